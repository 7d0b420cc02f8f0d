//! Berth's web UI: pages rendered on the server from the templates and catalogues under
//! `web/`, with a little htmx (vendored under `web/static/vendor/`) and no build step. Every
//! page reads for a browser without JavaScript; forms are plain POSTs carrying a CSRF token.
//!
//! The UI knows HTTP and HTML only: it asks the registry service for everything, and the
//! same permission checks as the management API decide what a user sees (a private project
//! an outsider may not see is a 404, as in the API).

mod account;
mod artifact;
mod artifacts;
mod assets;
mod configuration;
pub mod i18n;
mod jobs;
mod logs;
mod members;
mod pages;
pub mod render;
mod robots;
mod session;
mod settings;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use berth_api::AppState;
use minijinja::Environment;

use crate::i18n::Catalogues;

/// What the UI's handlers share.
pub struct Web {
    /// The registry (and its authentication, settings) the API also serves.
    pub app: AppState,
    templates: Environment<'static>,
    catalogues: Arc<Catalogues>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Web")
    }
}

/// The headers every UI response carries: a Content-Security-Policy with no inline script or
/// style and no framing, no MIME sniffing, no referrer leaving the site.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// The UI's routes (`/`, `/login`, `/logout`, `/language`, `/account`, `/projects…`,
/// `/admin/…`, `/static/…`), to be merged with the API's router.
pub fn router(app: AppState) -> Router {
    let catalogues = Arc::new(Catalogues::load());
    let web = Arc::new(Web {
        app,
        templates: render::environment(catalogues.clone()),
        catalogues,
    });
    let mut router = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/account", get(account::show).post(account::change))
        .route("/language", post(pages::language))
        .route(
            "/projects",
            get(pages::projects).post(pages::create_project),
        )
        .route("/projects/{name}", get(pages::project))
        .route(
            "/projects/{name}/repositories/{*repository}",
            get(pages::repository).post(artifacts::change),
        )
        .route(
            "/projects/{name}/members",
            get(members::list).post(members::add),
        )
        .route("/projects/{name}/members/{id}/{action}", post(members::act))
        .route(
            "/projects/{name}/robots",
            get(robots::list).post(robots::create),
        )
        .route("/projects/{name}/robots/{id}/{action}", post(robots::act))
        .route("/projects/{name}/logs", get(logs::project))
        .route(
            "/projects/{name}/settings",
            get(settings::show).post(settings::change),
        )
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/{id}/{action}", post(users::act))
        .route(
            "/admin/robots",
            get(robots::system_list).post(robots::system_create),
        )
        .route("/admin/robots/{id}/{action}", post(robots::system_act))
        .route("/admin/audit", get(logs::all))
        .route("/admin/jobs", get(jobs::overview))
        .route(
            "/admin/configuration",
            get(configuration::show).post(configuration::change),
        )
        .route("/admin/jobs/executions/{id}", get(jobs::execution))
        .route("/admin/jobs/{what}/{id}/{action}", post(jobs::act))
        .route("/static/{*file}", get(assets::serve))
        .with_state(web);
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    router
}
