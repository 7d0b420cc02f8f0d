//! A registry client for the workloads: the upload flows clients use, manifests, pulls, and
//! the token a Berth with authentication on wants.

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use sha2::{Digest, Sha256};

use crate::servers::{ADMIN, Kind};

/// The manifest media type the workloads push.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// How requests authenticate.
#[derive(Clone)]
enum Auth {
    None,
    Basic,
    Bearer(String),
}

/// One registry as the workloads see it.
#[derive(Clone)]
pub struct Registry {
    /// Which one.
    pub kind: Kind,
    base: String,
    client: Client,
    auth: Auth,
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// `n` pseudo-random bytes (splitmix64 from `seed`): incompressible, and quick to make.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// An OCI image manifest for a config and layers (digest, size).
pub fn image_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, n)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers,
    }))
    .unwrap_or_default()
}

/// How a blob is uploaded.
#[derive(Debug, Clone, Copy)]
pub enum Flow {
    /// `POST`, then `PUT ?digest=` with the whole body.
    Monolithic,
    /// `POST`, one streamed `PATCH` (chunked transfer encoding), `PUT ?digest=`: docker's way.
    Docker,
    /// `POST`, `PATCH`es of this many bytes with `Content-Range`, `PUT ?digest=`.
    Chunked(usize),
}

fn check(
    r: reqwest::Response,
    expected: StatusCode,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    if r.status() == expected {
        Ok(r)
    } else {
        bail!("{what}: expected {expected}, got {}", r.status())
    }
}

impl Registry {
    /// A client for `kind` at `base`, with up to `connections` connections.
    pub fn new(kind: Kind, base: &str) -> anyhow::Result<Self> {
        let client = Client::builder()
            .http1_only()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            kind,
            base: base.to_owned(),
            client,
            auth: if kind.token() {
                Auth::Basic
            } else {
                Auth::None
            },
        })
    }

    /// The same registry, authenticating with a token for `scopes` (Berth with auth on), or
    /// as it is (the others).
    pub async fn with_token(&self, scopes: &[String]) -> anyhow::Result<Self> {
        if !self.kind.token() {
            return Ok(self.clone());
        }
        let token = self.token(scopes).await?;
        Ok(Self {
            auth: Auth::Bearer(token),
            ..self.clone()
        })
    }

    /// A token for `scopes` from the token endpoint, with the administrator's credentials.
    pub async fn token(&self, scopes: &[String]) -> anyhow::Result<String> {
        let mut query = vec![("service", "berth-registry".to_owned())];
        query.extend(scopes.iter().map(|s| ("scope", s.clone())));
        let r = self
            .client
            .get(format!("{}/service/token", self.base))
            .query(&query)
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await?;
        let r = check(r, StatusCode::OK, "token")?;
        let v: serde_json::Value = r.json().await?;
        v["token"]
            .as_str()
            .map(str::to_owned)
            .context("the token response has no token")
    }

    /// Creates the project (namespace) `name` where the registry has projects (Berth with
    /// authentication on: pushes go into existing projects only).
    pub async fn create_project(&self, name: &str) -> anyhow::Result<()> {
        if !self.kind.token() {
            return Ok(());
        }
        let r = self
            .client
            .post(format!("{}/api/v2.0/projects", self.base))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&serde_json::json!({"project_name": name}))
            .send()
            .await?;
        check(r, StatusCode::CREATED, "project creation")?;
        Ok(())
    }

    /// A request to `path` (or to an absolute URL), authenticated.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let r = self.client.request(method, url);
        match &self.auth {
            Auth::None => r,
            Auth::Basic => r.basic_auth(ADMIN.0, Some(ADMIN.1)),
            Auth::Bearer(t) => r.bearer_auth(t),
        }
    }

    fn location(r: &reqwest::Response) -> anyhow::Result<String> {
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("no Location")
    }

    fn with_digest(location: &str, digest: &str) -> String {
        let sep = if location.contains('?') { '&' } else { '?' };
        format!("{location}{sep}digest={digest}")
    }

    /// Uploads `data` (whose digest is `digest`) to `repo` the way `flow` says.
    pub async fn push_blob(
        &self,
        repo: &str,
        data: &Bytes,
        digest: &str,
        flow: Flow,
    ) -> anyhow::Result<()> {
        let r = self
            .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await?;
        let r = check(r, StatusCode::ACCEPTED, "start upload")?;
        let mut location = Self::location(&r)?;
        match flow {
            Flow::Monolithic => {
                let r = self
                    .request(Method::PUT, &Self::with_digest(&location, digest))
                    .header("content-type", "application/octet-stream")
                    .body(data.clone())
                    .send()
                    .await?;
                check(r, StatusCode::CREATED, "monolithic PUT")?;
                return Ok(());
            }
            Flow::Docker => {
                let chunks: Vec<Result<Bytes, std::io::Error>> = (0..data.len())
                    .step_by(1 << 20)
                    .map(|at| Ok(data.slice(at..(at + (1 << 20)).min(data.len()))))
                    .collect();
                let r = self
                    .request(Method::PATCH, &location)
                    .header("content-type", "application/octet-stream")
                    .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                        chunks,
                    )))
                    .send()
                    .await?;
                let r = check(r, StatusCode::ACCEPTED, "streamed PATCH")?;
                location = Self::location(&r)?;
            }
            Flow::Chunked(size) => {
                for at in (0..data.len()).step_by(size) {
                    let end = (at + size).min(data.len());
                    let r = self
                        .request(Method::PATCH, &location)
                        .header("content-type", "application/octet-stream")
                        .header("content-range", format!("{at}-{}", end - 1))
                        .body(data.slice(at..end))
                        .send()
                        .await?;
                    let r = check(r, StatusCode::ACCEPTED, "chunk PATCH")?;
                    location = Self::location(&r)?;
                }
            }
        }
        let r = self
            .request(Method::PUT, &Self::with_digest(&location, digest))
            .send()
            .await?;
        check(r, StatusCode::CREATED, "closing PUT")?;
        Ok(())
    }

    /// Downloads a blob, counting its bytes.
    pub async fn pull_blob(&self, repo: &str, digest: &str) -> anyhow::Result<u64> {
        let r = self
            .request(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await?;
        let r = check(r, StatusCode::OK, "blob GET")?;
        let mut n = 0u64;
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            n += chunk?.len() as u64;
        }
        Ok(n)
    }

    /// Pushes a manifest under `reference`.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &[u8],
    ) -> anyhow::Result<()> {
        let r = self
            .request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", MANIFEST_TYPE)
            .body(manifest.to_vec())
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            let status = r.status();
            bail!(
                "manifest PUT: {status}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Links a blob of `from` into `repo` (cross-repository mount).
    pub async fn mount(&self, repo: &str, digest: &str, from: &str) -> anyhow::Result<()> {
        let r = self
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
            )
            .send()
            .await?;
        check(r, StatusCode::CREATED, "mount")?;
        Ok(())
    }

    /// Pulls an image by tag: manifest, config, layers. Returns the bytes received.
    pub async fn pull_image(&self, repo: &str, tag: &str) -> anyhow::Result<u64> {
        let r = self
            .request(Method::GET, &format!("/v2/{repo}/manifests/{tag}"))
            .header("accept", MANIFEST_TYPE)
            .send()
            .await?;
        let r = check(r, StatusCode::OK, "manifest GET")?;
        let m: serde_json::Value = r.json().await?;
        let mut n = 0;
        let digests =
            std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten());
        for d in digests.filter_map(|b| b["digest"].as_str()) {
            n += self.pull_blob(repo, d).await?;
        }
        Ok(n)
    }
}
