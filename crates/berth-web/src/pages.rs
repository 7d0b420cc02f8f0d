//! The pages: sign in and out, the language, projects and a project.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use berth_api::management::sessions::{CSRF_COOKIE, SESSION_COOKIE, cookie_header};
use berth_api::management::{ApiError, project_for};
use berth_auth::ProjectOp;
use berth_meta::{Page, ProjectFilter};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use crate::Web;
use crate::i18n::{LANGUAGE_COOKIE, Locale, iso, size};
use crate::session::Viewer;

/// Rows per page of every list.
const PAGE_SIZE: u64 = 25;
/// Largest form body read.
const MAX_FORM: usize = 64 << 10;

/// A failure shown as a page, in the viewer's language, with its status.
pub(crate) struct PageError {
    status: StatusCode,
    key: &'static str,
}

impl PageError {
    pub(crate) fn new(status: StatusCode, key: &'static str) -> Self {
        Self { status, key }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let key = match e.status() {
            StatusCode::NOT_FOUND => "error-not-found",
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => "error-forbidden",
            StatusCode::SERVICE_UNAVAILABLE => "error-unavailable",
            s if s.is_client_error() => "error-bad-request",
            _ => "error-internal",
        };
        Self::new(e.status(), key)
    }
}

impl From<berth_meta::MetaError> for PageError {
    fn from(e: berth_meta::MetaError) -> Self {
        ApiError::from(e).into()
    }
}

/// Renders `template` for `viewer` with `values` (and the layout's own values).
pub(crate) fn render(
    web: &Web,
    viewer: &Viewer,
    status: StatusCode,
    template: &str,
    values: Value,
) -> Response {
    let base = context! {
        locale => viewer.locale.tag(),
        csrf => viewer.csrf,
        user => viewer.user,
        path => viewer.path,
        is_admin => viewer.user.is_some() && viewer.actor.is_admin(),
    };
    let ctx = context! { ..values, ..base };
    let html = web
        .templates
        .get_template(template)
        .and_then(|t| t.render(ctx));
    match html {
        Ok(html) => (status, viewer.headers(), Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template, error = %e, "page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

pub(crate) fn error_page(web: &Web, viewer: &Viewer, e: PageError) -> Response {
    // Someone not signed in is asked to sign in first, whether or not the page exists.
    if e.status == StatusCode::UNAUTHORIZED && viewer.user.is_none() {
        let next = urlencode(&viewer.path);
        return see_other(&format!("/login?next={next}"), viewer.headers());
    }
    let request = fluent_bundle::FluentValue::from(viewer.request_id.clone());
    let message = web
        .catalogues
        .text(viewer.locale, e.key, &[("request", request)]);
    render(web, viewer, e.status, "error.html", context! { message })
}

pub(crate) fn see_other(location: &str, headers: HeaderMap) -> Response {
    let mut response = (StatusCode::SEE_OTHER, headers).into_response();
    // A location no header can hold (a control character in a `next` path) goes home.
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/projects"));
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// The project `name` for a form that changes it: the form's CSRF token must be the viewer's,
/// and the viewer must be allowed `op` there.
pub(crate) async fn project_for_change(
    web: &Web,
    viewer: &Viewer,
    name: &str,
    csrf: Option<&str>,
    headers: &HeaderMap,
    op: ProjectOp,
) -> Result<berth_meta::Project, PageError> {
    if !viewer.csrf_ok(csrf) {
        return Err(PageError::new(StatusCode::FORBIDDEN, "error-csrf"));
    }
    let (project, _) = project_for(&web.app, &viewer.actor, headers, name, op).await?;
    Ok(project)
}

/// A path on this site to return to: anything else (another site, `//host`) is `/projects`.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/projects".to_owned(),
    }
}

pub(crate) fn form<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    (body.len() <= MAX_FORM)
        .then(|| serde_urlencoded::from_bytes(body).ok())
        .flatten()
}

/// A form body, or the page answering one that cannot be read (too large or malformed).
pub(crate) fn form_or_refuse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, PageError> {
    form(body).ok_or_else(|| PageError::new(StatusCode::BAD_REQUEST, "error-csrf"))
}

/// The query of a page a change redirects back to: `?saved=1` shows "Saved.".
#[derive(Deserialize, Default)]
pub struct SavedQuery {
    pub(crate) saved: Option<String>,
}

/// The query prefix that keeps a search across the pages of a list (`q=…&`), or nothing.
pub(crate) fn search_query(query: &str) -> String {
    if query.is_empty() {
        String::new()
    } else {
        format!("q={}&", urlencode(query))
    }
}

/// A form that carries only its CSRF token (the action is in the URL).
#[derive(Deserialize)]
pub(crate) struct TokenOnly {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// A form body whose `_csrf` field is the viewer's token; refused otherwise (403), or when it
/// cannot be read (400).
pub(crate) fn checked_form<T: for<'de> Deserialize<'de>>(
    viewer: &Viewer,
    body: &[u8],
) -> Result<T, PageError> {
    let token: TokenOnly = form_or_refuse(body)?;
    if !viewer.csrf_ok(token.csrf.as_deref()) {
        return Err(PageError::new(StatusCode::FORBIDDEN, "error-csrf"));
    }
    form_or_refuse(body)
}

/// `GET /`: the projects.
pub async fn home() -> Response {
    see_other("/projects", HeaderMap::new())
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`.
pub async fn login_form(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(q): Query<LoginQuery>,
) -> Response {
    render(
        &web,
        &viewer,
        StatusCode::OK,
        "login.html",
        context! { next => local_path(q.next.as_deref()), username => "", error => Value::from(()) },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    next: Option<String>,
}

/// `POST /login`: signs in (the same service call as `/c/login`, audited and rate-limited)
/// and goes to `next`; a failure shows the form again with the reason.
pub async fn login(State(web): State<Arc<Web>>, viewer: Viewer, body: Bytes) -> Response {
    let Some(f) = form::<LoginForm>(&body) else {
        return error_page(
            &web,
            &viewer,
            PageError::new(StatusCode::BAD_REQUEST, "login-missing"),
        );
    };
    let next = local_path(f.next.as_deref());
    let again = |status: StatusCode, message: String| {
        render(
            &web,
            &viewer,
            status,
            "login.html",
            context! { next => next.clone(), username => f.username.clone(), error => message },
        )
    };
    let catalogues = &web.catalogues;
    let text = |key: &str| catalogues.text(viewer.locale, key, &[]);
    if !viewer.csrf_ok(f.csrf.as_deref()) {
        return again(StatusCode::FORBIDDEN, text("login-stale"));
    }
    if f.username.is_empty() || f.password.is_empty() {
        return again(StatusCode::BAD_REQUEST, text("login-missing"));
    }
    let Some(auth) = &web.app.auth else {
        return see_other(&next, viewer.headers());
    };
    let opened = web
        .app
        .registry
        .sign_in(&auth.service, &f.username, &f.password, &viewer.client)
        .await;
    match opened {
        Ok(session) => {
            let mut headers = HeaderMap::new();
            headers.append(
                header::SET_COOKIE,
                cookie_header(&web.app, SESSION_COOKIE, &session.id, true, None),
            );
            headers.append(
                header::SET_COOKIE,
                cookie_header(&web.app, CSRF_COOKIE, &session.csrf, false, None),
            );
            see_other(&next, headers)
        }
        Err(berth_registry::Error::Throttled(wait)) => {
            let seconds = fluent_bundle::FluentValue::from(wait.as_secs().max(1) as i64);
            let message =
                catalogues.text(viewer.locale, "login-throttled", &[("seconds", seconds)]);
            let mut r = again(StatusCode::TOO_MANY_REQUESTS, message);
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            r
        }
        // Robot accounts never open sessions, whatever their secret: say so by their name.
        Err(berth_registry::Error::Unauthorized(_))
            if f.username.starts_with(berth_auth::ROBOT_PREFIX) =>
        {
            again(StatusCode::UNAUTHORIZED, text("login-robot"))
        }
        Err(berth_registry::Error::Unauthorized(_)) => {
            again(StatusCode::UNAUTHORIZED, text("login-failed"))
        }
        Err(e) => error_page(&web, &viewer, ApiError::from(e).into()),
    }
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    next: Option<String>,
    lang: Option<String>,
}

/// `POST /logout`: ends the session on every node.
pub async fn logout(State(web): State<Arc<Web>>, viewer: Viewer, body: Bytes) -> Response {
    let f = form::<TokenForm>(&body);
    if !viewer.csrf_ok(f.as_ref().and_then(|f| f.csrf.as_deref())) {
        return error_page(
            &web,
            &viewer,
            PageError::new(StatusCode::FORBIDDEN, "error-csrf"),
        );
    }
    if let (Some(auth), Some(id)) = (&web.app.auth, &viewer.session) {
        web.app
            .registry
            .sign_out(&auth.service, id, &viewer.client)
            .await;
    }
    let mut headers = HeaderMap::new();
    for (name, http_only) in [(SESSION_COOKIE, true), (CSRF_COOKIE, false)] {
        headers.append(
            header::SET_COOKIE,
            cookie_header(&web.app, name, "", http_only, Some(0)),
        );
    }
    see_other("/login", headers)
}

/// `POST /language`: remembers the chosen language (a year) and returns to the page.
pub async fn language(State(web): State<Arc<Web>>, viewer: Viewer, body: Bytes) -> Response {
    let Some(f) = form::<TokenForm>(&body) else {
        return error_page(
            &web,
            &viewer,
            PageError::new(StatusCode::BAD_REQUEST, "error-csrf"),
        );
    };
    if !viewer.csrf_ok(f.csrf.as_deref()) {
        return error_page(
            &web,
            &viewer,
            PageError::new(StatusCode::FORBIDDEN, "error-csrf"),
        );
    }
    let locale = f
        .lang
        .as_deref()
        .and_then(Locale::from_tag)
        .unwrap_or(viewer.locale);
    let mut headers = viewer.headers();
    headers.append(
        header::SET_COOKIE,
        cookie_header(
            &web.app,
            LANGUAGE_COOKIE,
            locale.tag(),
            true,
            Some(365 * 86_400),
        ),
    );
    see_other(&local_path(f.next.as_deref()), headers)
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    pub(crate) q: Option<String>,
    pub(crate) page: Option<u64>,
}

/// Page `page` (from 1) of lists of `PAGE_SIZE`: (page, offset).
pub(crate) fn page_of(page: Option<u64>) -> (u64, Page) {
    let page = page.unwrap_or(1).clamp(1, 1_000_000);
    (
        page,
        Page {
            offset: (page - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
        },
    )
}

pub(crate) fn pages(total: u64) -> u64 {
    total.div_ceil(PAGE_SIZE).max(1)
}

#[derive(Serialize)]
struct ProjectRow {
    name: String,
    public: bool,
    created: String,
    created_iso: String,
}

/// `GET /projects`: the projects the viewer may see (the API's rule), searched and paged.
pub async fn projects(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    match projects_page(&web, &viewer, q).await {
        Ok(r) => r,
        Err(e) => error_page(&web, &viewer, e),
    }
}

/// What the new-project form shows again after a refusal.
#[derive(Default)]
struct NewProjectForm {
    name: String,
    error: Option<String>,
    status: Option<StatusCode>,
}

/// Whether the viewer may create projects (the `project_creation` setting, as in the API).
fn may_create(web: &Web, viewer: &Viewer) -> bool {
    match &viewer.actor {
        berth_api::management::Actor::Open => true,
        berth_api::management::Actor::As(p) => {
            web.app.registry.settings().project_creation().allows(p)
        }
    }
}

async fn projects_page(web: &Web, viewer: &Viewer, q: ListQuery) -> Result<Response, PageError> {
    projects_with(web, viewer, q, NewProjectForm::default()).await
}

async fn projects_with(
    web: &Web,
    viewer: &Viewer,
    q: ListQuery,
    form: NewProjectForm,
) -> Result<Response, PageError> {
    let query = q.q.unwrap_or_default().trim().to_owned();
    let (page, window) = page_of(q.page);
    let mut robot_projects = Vec::new();
    let filter = ProjectFilter {
        scope: viewer.actor.project_scope(&mut robot_projects),
        name: (!query.is_empty()).then_some(query.as_str()),
        public: None,
    };
    let found = web
        .app
        .registry
        .meta()
        .list_projects(&filter, window)
        .await?;
    let rows: Vec<ProjectRow> = found
        .items
        .iter()
        .map(|p| ProjectRow {
            name: p.name.clone(),
            public: p.public,
            created: viewer.locale.datetime(p.created_at),
            created_iso: iso(p.created_at),
        })
        .collect();
    let page_query = search_query(&query);
    Ok(render(
        web,
        viewer,
        form.status.unwrap_or(StatusCode::OK),
        "projects.html",
        context! {
            projects => rows, total => found.total, query => query,
            page => page, pages => pages(found.total), page_query => page_query,
            may_create => may_create(web, viewer), new_name => form.name,
            create_error => form.error,
        },
    ))
}

#[derive(Deserialize)]
struct ProjectForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    project_name: String,
    public: Option<String>,
}

/// `POST /projects`: creates a project (the creator becomes its admin) and opens it; a
/// refused name is shown next to the field.
pub async fn create_project(State(web): State<Arc<Web>>, viewer: Viewer, body: Bytes) -> Response {
    let Some(f) = form::<ProjectForm>(&body) else {
        return error_page(
            &web,
            &viewer,
            PageError::new(StatusCode::BAD_REQUEST, "error-csrf"),
        );
    };
    if !viewer.csrf_ok(f.csrf.as_deref()) {
        return error_page(
            &web,
            &viewer,
            PageError::new(StatusCode::FORBIDDEN, "error-csrf"),
        );
    }
    if viewer.user.is_none() && web.app.auth.is_some() {
        return error_page(&web, &viewer, ApiError::unauthorized("sign in").into());
    }
    if !may_create(&web, &viewer) {
        return error_page(
            &web,
            &viewer,
            PageError::new(StatusCode::FORBIDDEN, "error-forbidden"),
        );
    }
    let name = f.project_name.trim().to_owned();
    let refused = |status: StatusCode, error: String| NewProjectForm {
        name: name.clone(),
        error: Some(error),
        status: Some(status),
    };
    let outcome = match name.parse::<berth_core::ProjectName>() {
        Err(e) => Err(refused(StatusCode::BAD_REQUEST, e.to_string())),
        Ok(project_name) => {
            let owner = match &viewer.actor {
                berth_api::management::Actor::As(berth_auth::Principal::User { id, .. }) => {
                    Some(*id)
                }
                _ => None,
            };
            let initiator = viewer.initiator();
            let public = f.public.as_deref() == Some("true");
            match web
                .app
                .registry
                .create_project(&initiator, &project_name, public, owner)
                .await
            {
                Ok(_) => Ok(project_name),
                Err(berth_registry::Error::Conflict(_)) => Err(refused(
                    StatusCode::CONFLICT,
                    web.catalogues
                        .text(viewer.locale, "project-new-exists", &[]),
                )),
                Err(e) => return error_page(&web, &viewer, ApiError::from(e).into()),
            }
        }
    };
    match outcome {
        Ok(name) => see_other(
            &format!("/projects/{}", urlencode(name.as_str())),
            viewer.headers(),
        ),
        Err(form) => match projects_with(&web, &viewer, ListQuery::default(), form).await {
            Ok(r) => r,
            Err(e) => error_page(&web, &viewer, e),
        },
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

#[derive(Serialize)]
struct RepositoryRow {
    name: String,
    short: String,
    artifacts: u64,
    updated: String,
    updated_iso: String,
}

/// `GET /projects/{name}`: a project's repositories; a project the viewer may not see is a
/// 404, exactly like one that does not exist.
pub async fn project(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    match project_page(&web, &viewer, &name, q, &headers).await {
        Ok(r) => r,
        Err(e) => error_page(&web, &viewer, e),
    }
}

async fn project_page(
    web: &Web,
    viewer: &Viewer,
    name: &str,
    q: ListQuery,
    headers: &HeaderMap,
) -> Result<Response, PageError> {
    let (project, standing) =
        project_for(&web.app, &viewer.actor, headers, name, ProjectOp::Read).await?;
    let (page, window) = page_of(q.page);
    let found = web
        .app
        .registry
        .meta()
        .list_repository_summaries(Some(std::slice::from_ref(&project.name)), None, window)
        .await?;
    let rows: Vec<RepositoryRow> = found
        .items
        .iter()
        .map(|r| RepositoryRow {
            short: r
                .name
                .strip_prefix(&format!("{}/", project.name))
                .unwrap_or(&r.name)
                .to_owned(),
            name: r.name.clone(),
            artifacts: r.artifact_count,
            updated: viewer.locale.datetime(r.updated_at),
            updated_iso: iso(r.updated_at),
        })
        .collect();
    Ok(render(
        web,
        viewer,
        StatusCode::OK,
        "project.html",
        context! {
            project => context! { name => project.name, public => project.public },
            repositories => rows, page => page, pages => pages(found.total), page_query => "",
            registry_host => web.app.system.registry_host,
            tab => "repositories", may_read_members => standing.may(ProjectOp::ReadMembers),
            may_read_robots => standing.may(ProjectOp::ReadRobots),
            may_read_logs => standing.may(ProjectOp::ReadLogs),
            may_update => standing.may(ProjectOp::Update),
        },
    ))
}

#[derive(Serialize)]
struct ArtifactRow {
    digest: String,
    short_digest: String,
    tags: Vec<String>,
    type_key: &'static str,
    platforms: usize,
    /// Artifacts whose subject it is (signatures, SBOMs…).
    referrers: u64,
    /// Its page.
    href: String,
    size: String,
    pushed: String,
    pushed_iso: String,
}

/// The UI's word for a manifest's media type.
pub(crate) fn type_key(media_type: &str) -> &'static str {
    match media_type {
        "application/vnd.oci.image.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v2+json" => "type-image",
        "application/vnd.oci.image.index.v1+json"
        | "application/vnd.docker.distribution.manifest.list.v2+json" => "type-index",
        _ => "type-other",
    }
}

/// `GET /projects/{name}/repositories/{repository…}`: its artifacts with their tags, type,
/// size, push time and the commands that pull them; or, for a path ending in
/// `/artifacts/{digest}`, that artifact's page.
pub async fn repository(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path((name, short)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let page = match crate::artifact::split_path(&short) {
        Some((repository, digest)) => {
            crate::artifact::page(&web, &viewer, &name, repository, digest, &headers).await
        }
        None => repository_with(&web, &viewer, &name, &short, q, &headers, None).await,
    };
    match page {
        Ok(r) => r,
        Err(e) => error_page(&web, &viewer, e),
    }
}

/// The repository page, with `refused` (status, reason) shown above the list when a change
/// was refused.
pub(crate) async fn repository_with(
    web: &Web,
    viewer: &Viewer,
    name: &str,
    short: &str,
    q: ListQuery,
    headers: &HeaderMap,
    refused: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let (project, standing) =
        project_for(&web.app, &viewer.actor, headers, name, ProjectOp::Read).await?;
    let repository = format!("{}/{short}", project.name);
    if repository.parse::<berth_core::RepositoryName>().is_err() {
        return Err(PageError::new(StatusCode::NOT_FOUND, "error-not-found"));
    }
    let (page, window) = page_of(q.page);
    let Some(found) = web
        .app
        .registry
        .meta()
        .list_artifacts(&repository, None, true, window)
        .await?
    else {
        return Err(PageError::new(StatusCode::NOT_FOUND, "error-not-found"));
    };
    // One query for the whole page's referrer counts.
    let digests: Vec<String> = found.items.iter().map(|a| a.digest.clone()).collect();
    let referrers = web
        .app
        .registry
        .meta()
        .referrer_counts(&repository, &digests)
        .await?;
    let rows: Vec<ArtifactRow> = found
        .items
        .iter()
        .map(|a| ArtifactRow {
            short_digest: crate::artifact::short_digest(&a.digest),
            href: crate::artifact::href(&project.name, short, &a.digest),
            referrers: referrers.get(&a.digest).copied().unwrap_or(0),
            digest: a.digest.clone(),
            tags: a.tags.iter().map(|(t, _)| t.clone()).collect(),
            type_key: type_key(&a.media_type),
            platforms: a.children.len(),
            size: size(a.size),
            pushed: viewer.locale.datetime(a.pushed_at),
            pushed_iso: iso(a.pushed_at),
        })
        .collect();
    let (status, error) = refused.map_or((StatusCode::OK, None), |(s, m)| (s, Some(m)));
    Ok(render(
        web,
        viewer,
        status,
        "repository.html",
        context! {
            project => project.name, short => short, repository => repository,
            artifacts => rows, page => page, pages => pages(found.total), page_query => "",
            registry_host => web.app.system.registry_host, error => error,
            may_push => standing.may(ProjectOp::Push),
            may_delete => standing.may(ProjectOp::DeleteArtifacts),
        },
    ))
}
