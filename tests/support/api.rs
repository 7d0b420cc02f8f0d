//! The management API harness: a Berth with authentication on, on SQLite or a private
//! MariaDB, and requests as a given user with Harbor's error envelope checked.

use reqwest::Method;
use serde_json::{Value, json};

use super::{ADMIN_PASSWORD, Berth};

/// The administrator's credentials.
pub const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);
/// No credentials.
pub const ANON: (&str, &str) = ("", "");

/// A Berth with authentication on, and a client.
pub struct Api {
    pub b: Berth,
    pub c: reqwest::Client,
    pub _db: Option<berth_testkit::MariaDb>,
}

/// The metadata database a case runs on.
#[derive(Clone, Copy)]
pub enum Backend {
    Sqlite,
    MariaDb,
}

/// Runs a case on both databases, as `<case>::sqlite` and `<case>::mariadb`.
#[allow(unused_macros)]
macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$case(crate::support::api::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn mariadb() {
                super::$case(crate::support::api::Backend::MariaDb).await;
            }
        }
    )*};
}

/// A response: status, headers and JSON body (`Null` when empty).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// Asserts Harbor's error envelope with `status` and `code`; returns the message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["errors"][0]["code"], code, "{}", self.body);
        let message = self.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!message.is_empty());
        message
    }

    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        &self.body
    }

    /// The id at the end of `Location`.
    pub fn created_id(&self) -> i64 {
        assert_eq!(self.status, 201, "{}", self.body);
        self.header("location")
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Api {
    pub async fn start() -> Self {
        Self::start_on(Backend::Sqlite).await
    }

    /// Berth with authentication on, on `backend`.
    pub async fn start_on(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Berth with authentication on, on `backend`, with extra environment.
    pub async fn start_with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let db = match backend {
            Backend::Sqlite => None,
            Backend::MariaDb => Some(
                tokio::task::spawn_blocking(berth_testkit::MariaDb::start)
                    .await
                    .unwrap(),
            ),
        };
        let url = db.as_ref().map(|db| db.database("berth"));
        let dir = tempfile::tempdir().unwrap();
        let mut env = vec![
            ("BERTH_AUTH_ENABLED", "true"),
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ];
        if let Some(url) = &url {
            env.push(("BERTH_DATABASE_URL", url.as_str()));
        }
        env.extend_from_slice(extra);
        let b = Berth::start_in(dir.path(), &env).await.keeping(dir);
        let mut api = Self::with(b);
        api._db = db;
        api
    }

    pub fn with(b: Berth) -> Self {
        Self {
            b,
            c: reqwest::Client::new(),
            _db: None,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        who: (&str, &str),
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .c
            .request(method, self.b.url(&format!("/api/v2.0{path}")));
        if !who.0.is_empty() {
            req = req.basic_auth(who.0, Some(who.1));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, who: (&str, &str)) -> Reply {
        self.send(Method::GET, path, who, None).await
    }

    pub async fn post(&self, path: &str, who: (&str, &str), body: Value) -> Reply {
        self.send(Method::POST, path, who, Some(body)).await
    }

    pub async fn put(&self, path: &str, who: (&str, &str), body: Value) -> Reply {
        self.send(Method::PUT, path, who, Some(body)).await
    }

    pub async fn delete(&self, path: &str, who: (&str, &str)) -> Reply {
        self.send(Method::DELETE, path, who, None).await
    }

    /// Creates a user with `password`; returns its id.
    pub async fn user(&self, name: &str, password: &str) -> i64 {
        self.post(
            "/users",
            ADMIN,
            json!({"username": name, "password": password, "email": format!("{name}@example.com")}),
        )
        .await
        .created_id()
    }

    /// Whether `who` can get a token at all (a login).
    pub async fn can_login(&self, who: (&str, &str)) -> bool {
        let r = self
            .c
            .get(self.b.url("/service/token?service=berth-registry"))
            .basic_auth(who.0, Some(who.1))
            .send()
            .await
            .unwrap();
        r.status() == 200
    }

    /// The actions a token for `who` grants on `repository`.
    pub async fn granted(&self, who: (&str, &str), repository: &str) -> Vec<String> {
        let r = self
            .c
            .get(self.b.url(&format!(
                "/service/token?service=berth-registry&scope=repository:{repository}:pull,push,delete"
            )))
            .basic_auth(who.0, Some(who.1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let token: Value = r.json().await.unwrap();
        let payload = token["token"].as_str().unwrap().split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &data_encoding::BASE64URL_NOPAD
                .decode(payload.as_bytes())
                .unwrap(),
        )
        .unwrap();
        claims["access"][0]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    /// Pushes an image with Basic credentials on /v2; returns the manifest digest.
    pub async fn push(&self, who: (&str, &str), repo: &str, tag: &str, seed: &str) -> String {
        let c = super::basic_client(who.0, who.1);
        super::push_image(&c, &self.b, repo, tag, seed)
            .await
            .1
            .to_string()
    }
}

#[allow(unused_imports)]
pub(crate) use on_both_databases;
