//! Parsing and validation of pushed manifests: OCI image manifests and indexes, Docker schema 2
//! manifests and manifest lists. Docker schema 1 is refused.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::media_type::{self, is_index};

/// A content descriptor as found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// `artifactType`, when present.
    pub artifact_type: Option<String>,
    /// Whether the content lives elsewhere (`urls` on a foreign or non-distributable layer):
    /// the registry does not hold it and does not require it.
    pub external: bool,
}

/// A manifest that passed validation, with what the registry needs to index it.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    /// The manifest's media type.
    pub media_type: String,
    /// The artifact type used by the referrers API: `artifactType`, or for an image manifest
    /// without one, the config's media type.
    pub artifact_type: Option<String>,
    /// The `subject` this manifest refers to, if any.
    pub subject: Option<Descriptor>,
    /// Blobs that must exist in the repository: config and layers of an image manifest.
    pub blobs: Vec<Descriptor>,
    /// Manifests that must exist in the repository: the entries of an index.
    pub manifests: Vec<Descriptor>,
    /// The manifest's `annotations` object, kept for the referrers API.
    pub annotations: Option<Map<String, Value>>,
}

/// Why a manifest was refused. All of these are `MANIFEST_INVALID` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The body is not a JSON object.
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    /// Docker schema 1.
    #[error(
        "Docker schema 1 manifests are not supported; push with a current client (docker 1.10 or later) or convert the image to schema 2 or OCI"
    )]
    Schema1,
    /// Neither the body nor the Content-Type names a supported manifest type.
    #[error(
        "unsupported manifest media type {0:?}: expected an OCI image manifest or index, or a Docker schema 2 manifest or manifest list"
    )]
    UnsupportedMediaType(String),
    /// Content-Type and the body's `mediaType` disagree.
    #[error("Content-Type {header:?} does not match the manifest's mediaType {body:?}")]
    MediaTypeMismatch {
        /// From the request header.
        header: String,
        /// From the manifest body.
        body: String,
    },
    /// A required field is missing or has the wrong shape.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<Value>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Value>,
    layers: Option<Value>,
    manifests: Option<Value>,
    subject: Option<Value>,
    annotations: Option<Value>,
}

fn descriptor(value: &Value, what: &str) -> Result<Descriptor, ManifestError> {
    let invalid = |msg: &str| ManifestError::Invalid(format!("{what}: {msg}"));
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("descriptor must be a JSON object"))?;
    let media_type = obj
        .get("mediaType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("descriptor has no mediaType"))?
        .to_owned();
    let digest = obj
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("descriptor has no digest"))?
        .parse::<Digest>()
        .map_err(|e| invalid(&e.to_string()))?;
    let size = obj
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("descriptor size must be a non-negative integer"))?;
    let artifact_type = obj
        .get("artifactType")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let has_urls = obj
        .get("urls")
        .and_then(Value::as_array)
        .is_some_and(|u| !u.is_empty());
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type,
        external: has_urls,
    })
}

fn descriptors(value: Option<&Value>, what: &str) -> Result<Vec<Descriptor>, ManifestError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| descriptor(v, &format!("{what}[{i}]")))
            .collect(),
        Some(_) => Err(ManifestError::Invalid(format!("{what} must be an array"))),
    }
}

/// Strips parameters (`; charset=…`) and whitespace from a Content-Type value.
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn is_schema1(media_type: &str) -> bool {
    media_type == media_type::DOCKER_SCHEMA1 || media_type == media_type::DOCKER_SCHEMA1_SIGNED
}

/// Parses and validates a manifest body as pushed with `content_type`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ParsedManifest, ManifestError> {
    let header = content_type.map(essence).filter(|s| !s.is_empty());
    if header.is_some_and(is_schema1) {
        return Err(ManifestError::Schema1);
    }
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
    if raw.media_type.as_deref().is_some_and(is_schema1)
        || raw.schema_version.as_ref().and_then(Value::as_u64) == Some(1)
    {
        return Err(ManifestError::Schema1);
    }
    if raw.schema_version.as_ref().and_then(Value::as_u64) != Some(2) {
        return Err(ManifestError::Invalid("schemaVersion must be 2".to_owned()));
    }
    let header_manifest_type = header.filter(|h| media_type::SUPPORTED_MANIFESTS.contains(h));
    let media_type = match (raw.media_type.as_deref(), header_manifest_type) {
        (Some(body), Some(header)) if body != header => {
            return Err(ManifestError::MediaTypeMismatch {
                header: header.to_owned(),
                body: body.to_owned(),
            });
        }
        (Some(body), _) => body.to_owned(),
        (None, Some(header)) => header.to_owned(),
        // Neither says: the OCI types are the only ones whose mediaType field is optional.
        (None, None) if raw.manifests.is_some() => media_type::OCI_INDEX.to_owned(),
        (None, None) if raw.config.is_some() => media_type::OCI_MANIFEST.to_owned(),
        (None, None) => {
            return Err(ManifestError::UnsupportedMediaType(
                header.unwrap_or("").to_owned(),
            ));
        }
    };
    if !media_type::SUPPORTED_MANIFESTS.contains(&media_type.as_str()) {
        return Err(ManifestError::UnsupportedMediaType(media_type));
    }
    let subject = raw
        .subject
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| descriptor(v, "subject"))
        .transpose()?;
    let annotations = match raw.annotations {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(ManifestError::Invalid(
                "annotations must be an object".to_owned(),
            ));
        }
    };

    if is_index(&media_type) {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(ManifestError::Invalid(
                "an index has manifests, not config or layers".to_owned(),
            ));
        }
        let Some(entries) = raw.manifests.as_ref() else {
            return Err(ManifestError::Invalid(
                "an index needs a manifests array".to_owned(),
            ));
        };
        return Ok(ParsedManifest {
            media_type,
            artifact_type: raw.artifact_type,
            subject,
            blobs: Vec::new(),
            manifests: descriptors(Some(entries), "manifests")?,
            annotations,
        });
    }

    if raw.manifests.is_some() {
        return Err(ManifestError::Invalid(
            "an image manifest has config and layers, not manifests".to_owned(),
        ));
    }
    let config = descriptor(
        raw.config
            .as_ref()
            .ok_or_else(|| ManifestError::Invalid("an image manifest needs a config".to_owned()))?,
        "config",
    )?;
    let artifact_type = raw
        .artifact_type
        .or_else(|| Some(config.media_type.clone()));
    let mut blobs = vec![config];
    blobs.extend(descriptors(raw.layers.as_ref(), "layers")?);
    Ok(ParsedManifest {
        media_type,
        artifact_type,
        subject,
        blobs,
        manifests: Vec::new(),
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const D2: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,{extra}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":0,"data":"e30=","newField":1}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":2}}]}}"#
        )
    }

    #[test]
    fn oci_image_manifest_without_media_type_uses_the_header() {
        let m = parse(Some(media_type::OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(m.media_type, media_type::OCI_MANIFEST);
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        // Inferred when neither says.
        let m = parse(None, image("").as_bytes()).unwrap();
        assert_eq!(m.media_type, media_type::OCI_MANIFEST);
    }

    #[test]
    fn index_with_subject_and_artifact_type() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","artifactType":"application/x-demo",
            "manifests":[{{"mediaType":"{}","digest":"{D1}","size":10,"platform":{{"os":"linux"}}}}],
            "subject":{{"mediaType":"{}","digest":"{D2}","size":3}},"annotations":{{"k":"v"}}}}"#,
            media_type::OCI_INDEX,
            media_type::OCI_MANIFEST,
            media_type::OCI_MANIFEST
        );
        let m = parse(
            Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(m.manifests.len(), 1);
        assert_eq!(m.subject.unwrap().digest.as_str(), D2);
        assert_eq!(m.artifact_type.as_deref(), Some("application/x-demo"));
        assert_eq!(m.annotations.unwrap()["k"], "v");
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            parse(None, b"blablabla"),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(parse(None, b"[]"), Err(ManifestError::Json(_))));
        assert!(matches!(
            parse(
                None,
                br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#
            ),
            Err(ManifestError::Schema1)
        ));
        assert!(matches!(
            parse(Some(media_type::DOCKER_SCHEMA1_SIGNED), b"{}"),
            Err(ManifestError::Schema1)
        ));
        assert!(matches!(
            parse(
                Some(media_type::DOCKER_MANIFEST),
                image(&format!(r#""mediaType":"{}","#, media_type::OCI_MANIFEST)).as_bytes()
            ),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            parse(None, image(r#""mediaType":"text/plain","#).as_bytes()),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            parse(None, br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:nope","size":1}}"#),
            Err(ManifestError::Invalid(_))
        ));
        assert!(matches!(
            parse(None, br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}}"#),
            Err(ManifestError::Invalid(_))
        ));
        assert!(matches!(
            parse(Some(media_type::OCI_INDEX), br#"{"schemaVersion":2}"#),
            Err(ManifestError::Invalid(_))
        ));
        assert!(matches!(
            parse(
                Some(media_type::OCI_MANIFEST),
                br#"{"schemaVersion":2,"layers":[]}"#
            ),
            Err(ManifestError::Invalid(_))
        ));
    }
}
