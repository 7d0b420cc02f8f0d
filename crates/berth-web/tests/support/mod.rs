//! What the in-process UI tests share: a real app (SQLite, filesystem blobs, token service)
//! with the UI's routes merged as `berth serve` merges them, driven with `oneshot` by a
//! client that keeps cookies like a browser; and helpers that set up projects and users.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use berth_testkit::app::{ADMIN, ADMIN_PASSWORD};
use tower::ServiceExt;

pub struct Browser {
    pub router: axum::Router,
    pub app: berth_api::AppState,
    pub cookies: BTreeMap<String, String>,
    pub accept_language: Option<&'static str>,
    _dir: Option<tempfile::TempDir>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    /// The value of hidden input `_csrf` in the page's first form.
    pub fn token(&self) -> String {
        let marker = "name=\"_csrf\" value=\"";
        let at = self.html.find(marker).expect("a form token");
        let rest = &self.html[at + marker.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl Browser {
    pub async fn start() -> Self {
        Self::start_with(berth_registry::SettingsBase::default()).await
    }

    /// A browser on a registry whose settings start from `base`.
    pub async fn start_with(base: berth_registry::SettingsBase) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let app = berth_testkit::app::build_with(dir.path(), base).await;
        let router = berth_api::router_with(app.clone(), berth_web::router(app.clone()));
        Self {
            router,
            app,
            cookies: BTreeMap::new(),
            accept_language: None,
            _dir: Some(dir),
        }
    }

    /// Another browser (its own cookies) on the same registry.
    pub fn another(&self) -> Self {
        Self {
            router: self.router.clone(),
            app: self.app.clone(),
            cookies: BTreeMap::new(),
            accept_language: None,
            _dir: None,
        }
    }

    /// Posts a form whose values are owned strings.
    pub async fn post_owned(&mut self, path: &str, form: &[(&str, String)]) -> Page {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(path, &pairs).await
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let mut req = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        if let Some(l) = self.accept_language {
            req = req.header(header::ACCEPT_LANGUAGE, l);
        }
        let body = match form {
            Some(fields) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                serde_urlencoded::to_string(fields).unwrap()
            }
            None => String::new(),
        };
        let mut req = req.body(Body::from(body)).unwrap();
        let peer: SocketAddr = "192.0.2.20:50000".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let response = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        for c in parts.headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        Page {
            status: parts.status,
            headers: parts.headers,
            html: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// A registry request with the administrator's Basic credentials (to push).
    pub async fn admin_v2(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> StatusCode {
        let credentials =
            data_encoding::BASE64.encode(format!("{ADMIN}:{ADMIN_PASSWORD}").as_bytes());
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Basic {credentials}"))
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        let peer: SocketAddr = "192.0.2.20:50000".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        self.router.clone().oneshot(req).await.unwrap().status()
    }

    /// Pushes a one-layer image as `repository:tag`; returns its digest.
    pub async fn push(&self, repository: &str, tag: &str) -> String {
        let digest = |b: &[u8]| {
            use sha2::Digest as _;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
        };
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let layer = tag.as_bytes().repeat(500);
        for blob in [&config, &layer] {
            let path = format!("/v2/{repository}/blobs/uploads/?digest={}", digest(blob));
            let status = self
                .admin_v2(
                    Method::POST,
                    &path,
                    "application/octet-stream",
                    blob.clone(),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        let status = self
            .admin_v2(
                Method::PUT,
                &format!("/v2/{repository}/manifests/{tag}"),
                "application/vnd.oci.image.manifest.v1+json",
                manifest.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        digest(&manifest)
    }

    /// The status of a registry request with `user`'s Basic credentials.
    pub async fn v2_status(&self, user: &str, password: &str, path: &str) -> StatusCode {
        let credentials = data_encoding::BASE64.encode(format!("{user}:{password}").as_bytes());
        let mut req = Request::builder()
            .uri(path)
            .header(header::AUTHORIZATION, format!("Basic {credentials}"))
            .body(Body::empty())
            .unwrap();
        let peer: SocketAddr = "192.0.2.30:50000".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        self.router.clone().oneshot(req).await.unwrap().status()
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    pub async fn sign_in(&mut self, user: &str, password: &str) -> Page {
        let token = self.get("/login").await.token();
        let form = [
            ("_csrf", token.as_str()),
            ("username", user),
            ("password", password),
            ("next", "/projects"),
        ];
        self.post("/login", &form).await
    }
}

pub async fn project(app: &berth_api::AppState, name: &str, public: bool) {
    app.registry
        .create_project(
            &berth_registry::Initiator::system(),
            &name.parse().unwrap(),
            public,
            None,
        )
        .await
        .unwrap();
}

/// Makes user `name` a member of `project` with `role`.
pub async fn member(app: &berth_api::AppState, project: &str, name: &str, role: berth_auth::Role) {
    let meta = app.registry.meta();
    let project = meta.project(project).await.unwrap().unwrap();
    let id = meta.user(name).await.unwrap().unwrap().id;
    app.registry
        .add_member(
            &berth_registry::Initiator::system(),
            &project,
            &berth_meta::MemberEntity::User(id),
            name,
            role,
        )
        .await
        .unwrap();
}

pub async fn user(app: &berth_api::AppState, name: &str) {
    let new = berth_registry::NewUser {
        username: name.into(),
        password: "User-pass-123".into(),
        profile: berth_meta::UserProfile::default(),
    };
    app.registry
        .create_user(&berth_registry::Initiator::system(), new)
        .await
        .unwrap();
}
