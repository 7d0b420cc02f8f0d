//! The in-process harness: a real [`berth_api::App`] (SQLite database migrated, filesystem
//! blob store, token service, an administrator) in a temporary directory, and a typed client
//! that drives its router with `tower::ServiceExt::oneshot`, as a given caller.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use bytes::Bytes;
use data_encoding::BASE64;
use serde_json::{Value, json};
use tower::ServiceExt;

pub use berth_testkit::app::{ADMIN, ADMIN_PASSWORD, EXTERNAL_URL, SERVICE};

/// The management API's prefix.
pub const API: &str = "/api/v2.0";
/// The address every request comes from (handlers read `ConnectInfo<SocketAddr>`).
const PEER: &str = "192.0.2.10:40000";

/// A Berth HTTP surface on a real database and blob store in a temporary directory, with
/// authentication on and an administrator [`ADMIN`]/[`ADMIN_PASSWORD`].
pub struct TestApp {
    router: axum::Router,
    /// Kept for the life of the app: the database (`berth.db`) and the blob store
    /// (`storage/`) are in it.
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// Builds the app as `berth serve` wires it (see `crates/berth/src/serve.rs`), without
    /// the listener, the jobs and Redis.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let state = berth_testkit::app::build(dir.path()).await;
        Self {
            router: berth_api::router(state),
            dir,
        }
    }

    /// A client with the administrator's Basic credentials.
    pub fn as_admin(&self) -> Client<'_> {
        self.as_user(ADMIN, ADMIN_PASSWORD)
    }

    /// A client with `name`'s Basic credentials (a user or a robot account).
    pub fn as_user(&self, name: &str, password: &str) -> Client<'_> {
        Client {
            app: self,
            credentials: Some((name.to_owned(), password.to_owned())),
        }
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Client<'_> {
        Client {
            app: self,
            credentials: None,
        }
    }
}

/// A caller of a [`TestApp`]: every request carries its Basic credentials, if any.
pub struct Client<'a> {
    app: &'a TestApp,
    credentials: Option<(String, String)>,
}

impl Client<'_> {
    /// Sends `method path` with `headers` and `body` (with its `Content-Length`, as an HTTP
    /// client sends it), from [`PEER`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let body: Bytes = body.into();
        let mut req = Request::builder().method(method.clone()).uri(path);
        if let Some((user, password)) = &self.credentials {
            let encoded = BASE64.encode(format!("{user}:{password}").as_bytes());
            req = req.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        if !body.is_empty() {
            req = req.header(header::CONTENT_LENGTH, body.len());
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let mut req = req.body(Body::from(body)).expect("a valid request");
        let peer: SocketAddr = PEER.parse().expect("an address");
        req.extensions_mut().insert(ConnectInfo(peer));
        let response = self
            .app
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 << 20)
            .await
            .expect("a readable response body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            request: format!("{method} {path}"),
            status: parts.status,
            headers: parts.headers,
            body,
            bytes,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    /// `HEAD path`.
    pub async fn head(&self, path: &str) -> Reply {
        self.send(Method::HEAD, path, &[], Bytes::new()).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, &[], Bytes::new()).await
    }

    async fn json(&self, method: Method, path: &str, body: &Value) -> Reply {
        self.send(
            method,
            path,
            &[("content-type", "application/json")],
            Bytes::from(body.to_string()),
        )
        .await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.json(Method::POST, path, body).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.json(Method::PUT, path, body).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch_json(&self, path: &str, body: &Value) -> Reply {
        self.json(Method::PATCH, path, body).await
    }

    // ---- domain helpers: the request chains several tests need --------------------------

    /// Creates a local user (the caller must be an administrator); returns its id.
    pub async fn create_user(&self, name: &str, password: &str) -> i64 {
        self.post_json(
            &format!("{API}/users"),
            &json!({"username": name, "password": password, "email": format!("{name}@example.com")}),
        )
        .await
        .created_id("users")
    }

    /// Creates a private project owned by the caller; returns its id.
    pub async fn create_project(&self, name: &str) -> i64 {
        self.post_json(
            &format!("{API}/projects"),
            &json!({"project_name": name, "metadata": {"public": "false"}}),
        )
        .await
        .created_id("projects")
    }

    /// Adds user `username` to project `project_id` with Harbor's `role_id` (1 projectAdmin,
    /// 2 developer, 3 guest, 4 maintainer, 5 limitedGuest); returns the member id.
    pub async fn add_member(&self, project_id: i64, username: &str, role_id: u8) -> i64 {
        self.post_json(
            &format!("{API}/projects/{project_id}/members"),
            &json!({"role_id": role_id, "member_user": {"username": username}}),
        )
        .await
        .created_id(&format!("projects/{project_id}/members"))
    }

    /// Creates a robot account from Harbor's robot JSON; returns it with its secret.
    pub async fn create_robot(&self, body: &Value) -> CreatedRobot {
        let reply = self.post_json(&format!("{API}/robots"), body).await;
        let id = reply.created_id("robots");
        let text = |key: &str| {
            reply.body[key]
                .as_str()
                .unwrap_or_else(|| panic!("robot {key} missing: {}", reply.body))
                .to_owned()
        };
        CreatedRobot {
            id,
            name: text("name"),
            secret: text("secret"),
        }
    }

    /// The status `GET /v2/` answers the caller's credentials with: 200 when they
    /// authenticate, 401 when they do not.
    pub async fn v2_login(&self) -> StatusCode {
        self.get("/v2/").await.status
    }
}

/// A robot account just created.
pub struct CreatedRobot {
    /// Its id.
    pub id: i64,
    /// Its full name (`robot$…`).
    pub name: String,
    /// Its secret, shown once.
    pub secret: String,
}

/// Repository permissions with these actions, in Harbor's robot JSON.
pub fn access(actions: &[&str]) -> Value {
    Value::Array(
        actions
            .iter()
            .map(|a| json!({"resource": "repository", "action": a}))
            .collect(),
    )
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    /// What was asked, for assertion messages.
    pub request: String,
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as JSON; `Null` when it is empty or not JSON.
    pub body: Value,
    /// Its body's bytes.
    pub bytes: Bytes,
}

/// Harbor's error code for a status (`crates/berth-api/src/management/error.rs`).
fn harbor_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::PRECONDITION_FAILED => "PRECONDITION",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

impl Reply {
    fn context(&self) -> String {
        format!(
            "{} answered {}: {}",
            self.request,
            self.status,
            String::from_utf8_lossy(&self.bytes)
        )
    }

    /// Asserts the status; returns the reply.
    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "{}", self.context());
        self
    }

    /// A header's value (`""` when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().expect("a text header"))
    }

    /// Asserts Harbor's error envelope, exactly: `status`, a JSON body
    /// `{"errors":[{"code","message"}]}` with one error whose code is the status's, and a
    /// message. Returns the message.
    #[track_caller]
    pub fn harbor_error(&self, status: StatusCode) -> String {
        self.expect(status);
        assert!(
            self.header("content-type").starts_with("application/json"),
            "not JSON: {}",
            self.context()
        );
        let errors = self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array: {}", self.context()));
        assert_eq!(errors.len(), 1, "{}", self.context());
        let error = errors[0]
            .as_object()
            .unwrap_or_else(|| panic!("the error is not an object: {}", self.context()));
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message"], "{}", self.context());
        assert_eq!(error["code"], harbor_code(status), "{}", self.context());
        let message = error["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "empty message: {}", self.context());
        message.to_owned()
    }

    /// Asserts the OCI error envelope on `/v2`: `status`, `errors[0].code == code`, a message,
    /// and the API version header. Returns the message.
    #[track_caller]
    pub fn oci_error(&self, status: StatusCode, code: &str) -> String {
        self.expect(status);
        assert_eq!(
            self.header("docker-distribution-api-version"),
            "registry/2.0",
            "{}",
            self.context()
        );
        let errors = self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array: {}", self.context()));
        assert_eq!(errors.len(), 1, "{}", self.context());
        assert_eq!(errors[0]["code"], code, "{}", self.context());
        let message = errors[0]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "empty message: {}", self.context());
        message.to_owned()
    }

    /// Asserts `201 Created` with `Location: /api/v2.0/<collection>/<id>`; returns the id.
    #[track_caller]
    pub fn created_id(&self, collection: &str) -> i64 {
        self.expect(StatusCode::CREATED);
        let location = self.header("location");
        let id = location
            .strip_prefix(&format!("{API}/{collection}/"))
            .unwrap_or_else(|| panic!("Location {location:?}: {}", self.context()));
        id.parse()
            .unwrap_or_else(|_| panic!("Location {location:?}: {}", self.context()))
    }
}
