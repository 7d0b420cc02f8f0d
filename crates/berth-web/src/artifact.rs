//! One artifact's page, `/projects/{name}/repositories/{repository…}/artifacts/{digest}`:
//! its manifest, tags, pull commands, an image's config, layers and build history, an index's
//! children, the manifest's annotations and the artifacts that refer to it (signatures,
//! SBOMs).
//!
//! Manifests and configs hold whatever a pusher chose: they are read into loose structures
//! (every field optional, a field of the wrong type is taken as absent), lists are cut at
//! [`MAX_ROWS`], and everything reaches the page through the template's escaping. A config
//! that is missing, too large or unreadable is said so on the page; the page itself fails
//! only when the registry does.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_api::management::project_for;
use berth_auth::ProjectOp;
use berth_core::{Digest, Reference, RepositoryName};
use berth_meta::Page;
use minijinja::context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::Web;
use crate::i18n::{Locale, iso, size};
use crate::pages::{PageError, render, type_key, urlencode};
use crate::session::Viewer;

/// Most rows shown of any list on the page (layers, history, children, referrers, labels…).
pub const MAX_ROWS: usize = 500;
/// Largest config blob read.
pub const MAX_CONFIG: u64 = 1 << 20;

/// Config media types read as an image's config.
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// The repository part and the digest of an artifact page's path below
/// `/projects/{name}/repositories/`: `{repository…}/artifacts/{digest}`, recognised by a last
/// segment with a `:` (which no repository name holds) after `artifacts`.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let (rest, last) = path.rsplit_once('/')?;
    if !last.contains(':') {
        return None;
    }
    let repository = rest.strip_suffix("/artifacts")?;
    Some((repository, last))
}

/// The path of an artifact's page.
pub fn href(project: &str, short: &str, digest: &str) -> String {
    format!(
        "/projects/{}/repositories/{short}/artifacts/{digest}",
        urlencode(project)
    )
}

/// A digest as the UI shortens it: the first 12 hex digits.
pub fn short_digest(digest: &str) -> String {
    digest
        .split_once(':')
        .map_or(digest, |(_, hex)| hex.get(..12).unwrap_or(hex))
        .to_owned()
}

fn not_found() -> PageError {
    PageError::new(StatusCode::NOT_FOUND, "error-not-found")
}

// ---------------------------------------------------------------------------------------------
// What a manifest and a config may hold, read loosely.

/// `T` from whatever the field holds, or `T::default()` if it holds something else.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(d: D) -> Result<T, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// The elements of a list that are `T`s (others skipped); nothing if it is not a list.
fn items<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(values) => values
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => Vec::new(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Manifest {
    #[serde(deserialize_with = "lenient")]
    config: Option<Descriptor>,
    #[serde(deserialize_with = "items")]
    layers: Vec<Descriptor>,
    #[serde(deserialize_with = "items")]
    manifests: Vec<Descriptor>,
    #[serde(deserialize_with = "lenient")]
    annotations: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Descriptor {
    #[serde(deserialize_with = "lenient")]
    media_type: String,
    #[serde(deserialize_with = "lenient")]
    artifact_type: Option<String>,
    #[serde(deserialize_with = "lenient")]
    digest: String,
    #[serde(deserialize_with = "lenient")]
    size: u64,
    #[serde(deserialize_with = "lenient")]
    platform: Option<Platform>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Platform {
    #[serde(deserialize_with = "lenient")]
    os: String,
    #[serde(deserialize_with = "lenient")]
    architecture: String,
    #[serde(deserialize_with = "lenient")]
    variant: Option<String>,
    #[serde(rename = "os.version", deserialize_with = "lenient")]
    os_version: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ImageConfig {
    #[serde(deserialize_with = "lenient")]
    created: Option<String>,
    #[serde(deserialize_with = "lenient")]
    author: Option<String>,
    #[serde(deserialize_with = "lenient")]
    os: Option<String>,
    #[serde(rename = "os.version", deserialize_with = "lenient")]
    os_version: Option<String>,
    #[serde(deserialize_with = "lenient")]
    architecture: Option<String>,
    #[serde(deserialize_with = "lenient")]
    variant: Option<String>,
    #[serde(deserialize_with = "lenient")]
    config: RunConfig,
    #[serde(deserialize_with = "items")]
    history: Vec<History>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RunConfig {
    #[serde(rename = "User", deserialize_with = "lenient")]
    user: Option<String>,
    #[serde(rename = "WorkingDir", deserialize_with = "lenient")]
    working_dir: Option<String>,
    #[serde(rename = "Env", deserialize_with = "items")]
    env: Vec<String>,
    #[serde(rename = "Entrypoint", deserialize_with = "items")]
    entrypoint: Vec<String>,
    #[serde(rename = "Cmd", deserialize_with = "items")]
    cmd: Vec<String>,
    #[serde(rename = "ExposedPorts", deserialize_with = "lenient")]
    exposed_ports: BTreeMap<String, Value>,
    #[serde(rename = "Labels", deserialize_with = "lenient")]
    labels: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct History {
    #[serde(deserialize_with = "lenient")]
    created: Option<String>,
    #[serde(deserialize_with = "lenient")]
    created_by: Option<String>,
    #[serde(deserialize_with = "lenient")]
    comment: Option<String>,
    #[serde(deserialize_with = "lenient")]
    empty_layer: bool,
}

// ---------------------------------------------------------------------------------------------
// What the template shows.

/// A time as the page shows it: in the viewer's format with its RFC 3339 form, or as written
/// when it is not a time this page can read.
#[derive(Serialize)]
struct When {
    text: String,
    iso: Option<String>,
}

impl When {
    fn of(locale: Locale, written: &str) -> Self {
        match rfc3339(written) {
            Some(t) => Self {
                text: locale.datetime(t),
                iso: Some(iso(t)),
            },
            None => Self {
                text: written.to_owned(),
                iso: None,
            },
        }
    }
}

/// A link to an artifact's page (`href` is `None` for a digest that is not one).
#[derive(Serialize)]
struct Link {
    digest: String,
    short_digest: String,
    href: Option<String>,
}

#[derive(Serialize)]
struct Pair {
    key: String,
    value: String,
}

#[derive(Serialize)]
struct TagRow {
    name: String,
    pushed: String,
    pushed_iso: String,
}

#[derive(Serialize)]
struct LayerRow {
    number: usize,
    media_type: String,
    digest: String,
    short_digest: String,
    size: String,
}

#[derive(Serialize)]
struct HistoryRow {
    number: usize,
    created: Option<When>,
    created_by: String,
    comment: String,
    empty_layer: bool,
}

#[derive(Serialize)]
struct ChildRow {
    platform: String,
    os_version: String,
    media_type: String,
    artifact_type: String,
    size: String,
    link: Link,
}

#[derive(Serialize)]
struct ReferrerRow {
    artifact_type: String,
    media_type: String,
    tags: Vec<String>,
    size: String,
    pushed: String,
    pushed_iso: String,
    link: Link,
}

/// An image's config: the descriptor, and what the blob holds when it could be read
/// (`state`: `shown`, `other` (not an image config), `missing`, `too-large`, `unreadable`,
/// `invalid`).
#[derive(Serialize, Default)]
struct ConfigView {
    state: &'static str,
    media_type: String,
    digest: String,
    size: String,
    os: Option<String>,
    os_version: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
    created: Option<When>,
    author: Option<String>,
    user: Option<String>,
    working_dir: Option<String>,
    entrypoint: Option<String>,
    cmd: Option<String>,
    env: Vec<String>,
    env_total: usize,
    ports: Vec<String>,
    labels: Vec<Pair>,
    labels_total: usize,
}

/// A `(shown, total)` cut of a list at [`MAX_ROWS`].
fn cut<T>(list: impl ExactSizeIterator<Item = T>) -> (Vec<T>, usize) {
    let total = list.len();
    (list.take(MAX_ROWS).collect(), total)
}

/// A JSON value as text: a string as it is, anything else as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Pairs of a JSON object, cut at [`MAX_ROWS`].
fn pairs(map: &BTreeMap<String, Value>) -> (Vec<Pair>, usize) {
    cut(map.iter().map(|(k, v)| Pair {
        key: k.clone(),
        value: text(v),
    }))
}

/// A command (entrypoint, cmd) as Docker writes it: a JSON array of strings.
fn command(words: &[String]) -> Option<String> {
    (!words.is_empty())
        .then(|| serde_json::to_string(words).ok())
        .flatten()
}

/// The Unix time an RFC 3339 date-time names (`2024-05-01T10:00:00.123Z`,
/// `…+02:00`); `None` for anything else.
fn rfc3339(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339);
    t.ok().map(time::OffsetDateTime::unix_timestamp)
}

/// Valid JSON text re-indented by two spaces per level, keys in their pushed order (streamed
/// from the parser to the printer, never through a map); `None` if `raw` is not JSON.
pub fn pretty_json(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len() * 2);
    let mut from = serde_json::Deserializer::from_slice(raw);
    let mut to = serde_json::Serializer::pretty(&mut out);
    serde_transcode::transcode(&mut from, &mut to).ok()?;
    from.end().ok()?;
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------------------------
// The page.

/// What reading the config blob gave: its bytes, or the state to show instead.
async fn read_config(web: &Web, digest: &str) -> Result<Vec<u8>, &'static str> {
    let digest: Digest = digest.parse().map_err(|_| "unreadable")?;
    let blobs = web.app.registry.blobs();
    let info = match blobs.stat_blob(&digest).await {
        Ok(Some(info)) => info,
        Ok(None) => return Err("missing"),
        Err(e) => {
            tracing::warn!(%digest, error = %e, "config blob could not be looked up");
            return Err("unreadable");
        }
    };
    if info.size > MAX_CONFIG {
        return Err("too-large");
    }
    let stream = match blobs.read(&digest, 0..info.size).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%digest, error = %e, "config blob could not be read");
            return Err("unreadable");
        }
    };
    let limit = usize::try_from(MAX_CONFIG).unwrap_or(usize::MAX);
    match axum::body::to_bytes(Body::from_stream(stream), limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) => {
            tracing::warn!(%digest, error = %e, "config blob could not be read");
            Err("unreadable")
        }
    }
}

/// An image's config as the page shows it, with its build history (cut at [`MAX_ROWS`]) and
/// how many history lines it has.
async fn config_view(
    web: &Web,
    locale: Locale,
    descriptor: &Descriptor,
) -> (ConfigView, Vec<HistoryRow>, usize) {
    let mut view = ConfigView {
        state: "other",
        media_type: descriptor.media_type.clone(),
        digest: descriptor.digest.clone(),
        size: size(descriptor.size),
        ..ConfigView::default()
    };
    if !IMAGE_CONFIGS.contains(&descriptor.media_type.as_str()) {
        return (view, Vec::new(), 0);
    }
    let bytes = match read_config(web, &descriptor.digest).await {
        Ok(b) => b,
        Err(state) => {
            view.state = state;
            return (view, Vec::new(), 0);
        }
    };
    let Ok(config) = serde_json::from_slice::<ImageConfig>(&bytes) else {
        view.state = "invalid";
        return (view, Vec::new(), 0);
    };
    let history: Vec<HistoryRow> = config
        .history
        .iter()
        .take(MAX_ROWS)
        .enumerate()
        .map(|(i, h)| HistoryRow {
            number: i + 1,
            created: h.created.as_deref().map(|c| When::of(locale, c)),
            created_by: h.created_by.clone().unwrap_or_default(),
            comment: h.comment.clone().unwrap_or_default(),
            empty_layer: h.empty_layer,
        })
        .collect();
    let history_total = config.history.len();
    let run = config.config;
    let (env, env_total) = cut(run.env.into_iter());
    let (labels, labels_total) = pairs(&run.labels);
    let view = ConfigView {
        state: "shown",
        os: config.os,
        os_version: config.os_version,
        architecture: config.architecture,
        variant: config.variant,
        created: config.created.as_deref().map(|c| When::of(locale, c)),
        author: config.author,
        user: run.user.filter(|u| !u.is_empty()),
        working_dir: run.working_dir.filter(|w| !w.is_empty()),
        entrypoint: command(&run.entrypoint),
        cmd: command(&run.cmd),
        env,
        env_total,
        ports: run.exposed_ports.into_keys().take(MAX_ROWS).collect(),
        labels,
        labels_total,
        ..view
    };
    (view, history, history_total)
}

/// `GET /projects/{name}/repositories/{short}/artifacts/{digest}`: the page of one artifact. A
/// project the viewer may not see, a repository or digest that is not there (or not a digest)
/// are all "not found".
pub async fn page(
    web: &Web,
    viewer: &Viewer,
    name: &str,
    short: &str,
    digest: &str,
    headers: &HeaderMap,
) -> Result<Response, PageError> {
    let (project, _) = project_for(&web.app, &viewer.actor, headers, name, ProjectOp::Read).await?;
    let repository = format!("{}/{short}", project.name);
    if repository.parse::<RepositoryName>().is_err() {
        return Err(not_found());
    }
    let digest: Digest = digest.parse().map_err(|_| not_found())?;
    let meta = web.app.registry.meta();
    let Some(artifact) = meta.artifact(&repository, digest.as_str()).await? else {
        return Err(not_found());
    };
    let Some(stored) = meta
        .manifest(&repository, &Reference::Digest(digest.clone()))
        .await?
    else {
        return Err(not_found());
    };
    let locale = viewer.locale;
    let link = |d: &str| Link {
        digest: d.to_owned(),
        short_digest: short_digest(d),
        href: d
            .parse::<Digest>()
            .ok()
            .map(|d| href(&project.name, short, d.as_str())),
    };
    let manifest: Manifest = serde_json::from_slice(&stored.content).unwrap_or_default();
    let manifest_text = pretty_json(&stored.content)
        .unwrap_or_else(|| String::from_utf8_lossy(&stored.content).into_owned());

    // An image: its config (read from the blob store), layers and history.
    let (config, history, history_total) = match &manifest.config {
        Some(descriptor) => {
            let (view, history, total) = config_view(web, locale, descriptor).await;
            (Some(view), history, total)
        }
        None => (None, Vec::new(), 0),
    };
    let layers: Vec<LayerRow> = manifest
        .layers
        .iter()
        .take(MAX_ROWS)
        .enumerate()
        .map(|(i, l)| LayerRow {
            number: i + 1,
            media_type: l.media_type.clone(),
            short_digest: short_digest(&l.digest),
            digest: l.digest.clone(),
            size: size(l.size),
        })
        .collect();

    // An index: its children, with their platforms.
    let children: Vec<ChildRow> = manifest
        .manifests
        .iter()
        .take(MAX_ROWS)
        .map(|m| {
            let platform = m.platform.as_ref();
            ChildRow {
                platform: platform
                    .map(|p| {
                        [
                            Some(p.os.as_str()),
                            Some(p.architecture.as_str()),
                            p.variant.as_deref(),
                        ]
                        .into_iter()
                        .flatten()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("/")
                    })
                    .unwrap_or_default(),
                os_version: platform
                    .and_then(|p| p.os_version.clone())
                    .unwrap_or_default(),
                media_type: m.media_type.clone(),
                artifact_type: m.artifact_type.clone().unwrap_or_default(),
                size: size(m.size),
                link: link(&m.digest),
            }
        })
        .collect();

    let (annotations, annotations_total) = pairs(&manifest.annotations);

    let window = Page {
        offset: 0,
        limit: MAX_ROWS as u64,
    };
    let referrers = meta
        .list_referrers(&repository, digest.as_str(), window)
        .await?;
    let referrer_rows: Vec<ReferrerRow> = referrers
        .items
        .iter()
        .map(|r| ReferrerRow {
            artifact_type: r.artifact_type.clone().unwrap_or_default(),
            media_type: r.media_type.clone(),
            tags: r.tags.iter().map(|(t, _)| t.clone()).collect(),
            size: size(r.size),
            pushed: locale.datetime(r.pushed_at),
            pushed_iso: iso(r.pushed_at),
            link: link(&r.digest),
        })
        .collect();

    let tags: Vec<TagRow> = artifact
        .tags
        .iter()
        .map(|(name, at)| TagRow {
            name: name.clone(),
            pushed: locale.datetime(*at),
            pushed_iso: iso(*at),
        })
        .collect();
    let summary = context! {
        digest => artifact.digest,
        short_digest => short_digest(&artifact.digest),
        media_type => stored.media_type,
        artifact_type => artifact.artifact_type,
        type_key => type_key(&artifact.media_type),
        size => size(artifact.size),
        pushed => locale.datetime(artifact.pushed_at),
        pushed_iso => iso(artifact.pushed_at),
        subject => artifact.subject.as_deref().map(link),
        manifest => manifest_text,
    };
    Ok(render(
        web,
        viewer,
        StatusCode::OK,
        "artifact.html",
        context! {
            project => project.name, short => short, repository => repository,
            registry_host => web.app.system.registry_host,
            artifact => summary, tags => tags, config => config,
            layers => layers, layers_total => manifest.layers.len(),
            history => history, history_total => history_total,
            children => children, children_total => manifest.manifests.len(),
            annotations => annotations, annotations_total => annotations_total,
            referrers => referrer_rows, referrers_total => referrers.total,
            config_limit => size(MAX_CONFIG),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            split_path("tools/app/artifacts/sha256:ab"),
            Some(("tools/app", "sha256:ab"))
        );
        assert_eq!(
            split_path("artifacts/artifacts/sha256:ab"),
            Some(("artifacts", "sha256:ab"))
        );
        assert_eq!(split_path("tools/app/artifacts/v1"), None);
        assert_eq!(split_path("tools/app/sha256:ab"), None);
        assert_eq!(split_path("artifacts/sha256:ab"), None);
        assert_eq!(split_path("tools/app"), None);
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339("2025-12-01T00:01:03Z"), Some(1_764_547_263));
        assert_eq!(
            rfc3339("2025-12-01T00:01:03.123456789Z"),
            Some(1_764_547_263)
        );
        assert_eq!(rfc3339("2025-12-01T02:01:03+02:00"), Some(1_764_547_263));
        assert_eq!(rfc3339("2025-11-30T23:01:03-01:00"), Some(1_764_547_263));
        for bad in [
            "",
            "2025-12-01",
            "2025-12-01T00:01Z",
            "2025-12-01T00:01:03",
            "2025-12-01T00:01:03.Z",
            "2025-12-01T24:00:00Z",
            "2025-12-01T+1:01:03Z",
            "2025-12-01T00:01:03+0200",
            "2025-12-01T00:01:03Zx",
            "２０２５-12-01T00:01:03Z",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_is_reindented_in_its_own_order() {
        let raw = br#"{"z":1,"a":[ ],"s":"x,{\"y\":[1]}","o":{"k":[1,{}]}}"#;
        let pretty = pretty_json(raw).unwrap();
        assert_eq!(
            pretty,
            "{\n  \"z\": 1,\n  \"a\": [],\n  \"s\": \"x,{\\\"y\\\":[1]}\",\n  \"o\": {\n    \"k\": [\n      1,\n      {}\n    ]\n  }\n}"
        );
        let reparsed: Value = serde_json::from_str(&pretty).unwrap();
        let original: Value = serde_json::from_slice(raw).unwrap();
        assert_eq!(reparsed, original);
        assert_eq!(pretty_json(b"{\"a\":"), None);
        assert_eq!(pretty_json(b"not json"), None);
        // Deep nesting is refused by the check, not recursed into.
        assert_eq!(pretty_json(&[b'['; 100_000]), None);
    }

    #[test]
    fn odd_content_is_taken_loosely() {
        let m: Manifest = serde_json::from_str(
            r#"{"config": 5, "layers": [1, {"digest": 7, "size": -3, "mediaType": "t"}, {"digest": "sha256:ab", "size": 10}],
                "manifests": "no", "annotations": ["x"]}"#,
        )
        .unwrap();
        assert!(m.config.is_none());
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[0].digest, "");
        assert_eq!(m.layers[0].size, 0);
        assert_eq!(m.layers[0].media_type, "t");
        assert_eq!(m.layers[1].size, 10);
        assert!(m.manifests.is_empty() && m.annotations.is_empty());
        let c: ImageConfig = serde_json::from_str(
            r#"{"os": 1, "architecture": "arm64", "config": {"Env": ["A=1", 2], "Cmd": null, "Labels": null},
                "history": [{"created_by": "x", "empty_layer": "yes"}, 3]}"#,
        )
        .unwrap();
        assert_eq!(c.os, None);
        assert_eq!(c.architecture.as_deref(), Some("arm64"));
        assert_eq!(c.config.env, ["A=1"]);
        assert!(c.config.cmd.is_empty() && c.config.labels.is_empty());
        assert_eq!(c.history.len(), 1);
        assert!(!c.history[0].empty_layer);
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("sha256:01"), "01");
        assert_eq!(short_digest("odd"), "odd");
    }
}
