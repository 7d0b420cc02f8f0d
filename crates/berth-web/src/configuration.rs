//! The registry's configuration (system administrators): the authentication mode and the
//! directory's settings (with a connection test that uses the values in the form, saved or
//! not), who may create projects, the token lifetime. Saved settings apply on every node
//! within seconds; a setting the operator pinned in the configuration file or the
//! environment is shown read-only, with where it is pinned.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_api::management::ApiError;
use berth_registry::settings::{SettingKind, SettingView};
use minijinja::context;
use serde::Serialize;
use serde_json::Value;

use crate::Web;
use crate::pages::{PageError, SavedQuery, error_page, form, render, see_other};
use crate::session::Viewer;

/// A setting as the page shows it.
#[derive(Serialize)]
struct Field {
    key: &'static str,
    /// `bool`, `number`, `text`, `secret` or `choice`.
    kind: &'static str,
    /// The value shown (text; a secret's is empty, `set` tells whether one is stored).
    value: String,
    checked: bool,
    set: bool,
    choices: Vec<&'static str>,
    editable: bool,
    pinned_by: Option<String>,
}

/// The page's sections and their settings.
const SECTIONS: [(&str, &[&str]); 3] = [
    (
        "auth",
        &[
            "auth_mode",
            "ldap_url",
            "ldap_starttls",
            "ldap_verify_cert",
            "ldap_search_dn",
            "ldap_search_password",
            "ldap_base_dn",
            "ldap_filter",
            "ldap_uid",
            "ldap_group_base_dn",
            "ldap_group_search_filter",
            "ldap_group_membership_attribute",
            "ldap_group_admin_dn",
            "ldap_timeout",
        ],
    ),
    ("projects", &["project_creation_restriction"]),
    ("tokens", &["token_expiration"]),
];

fn field(view: &SettingView, shown: Option<&str>) -> Field {
    let (kind, choices) = match view.def.kind {
        SettingKind::Bool => ("bool", Vec::new()),
        SettingKind::Number(..) => ("number", Vec::new()),
        SettingKind::Text => ("text", Vec::new()),
        SettingKind::Secret => ("secret", Vec::new()),
        SettingKind::Choice(words) => ("choice", words.to_vec()),
    };
    let current = match &view.value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let value = match (view.def.kind, shown) {
        (SettingKind::Secret, _) => String::new(),
        (_, Some(s)) if view.editable => s.to_owned(),
        _ => current,
    };
    Field {
        key: view.def.key,
        kind,
        checked: match view.def.kind {
            SettingKind::Bool if view.editable && shown.is_some() => shown == Some("true"),
            _ => view.value.as_bool().unwrap_or_default(),
        },
        set: view.value.as_str() == Some("*"),
        value,
        choices,
        editable: view.editable,
        pinned_by: view.pinned_by.clone(),
    }
}

/// What the page shows besides the settings: values sent back after a refusal or a test,
/// and the outcome.
#[derive(Default)]
struct Outcome {
    status: Option<StatusCode>,
    sent: Option<BTreeMap<String, String>>,
    error: Option<String>,
    ping: Option<(bool, String)>,
    saved: bool,
}

fn page(web: &Web, viewer: &Viewer, outcome: Outcome) -> Result<Response, PageError> {
    viewer.actor.require_admin()?;
    let views = web.app.registry.setting_views();
    let sent = outcome.sent.as_ref();
    let sections: Vec<_> = SECTIONS
        .iter()
        .map(|(name, keys)| {
            let fields: Vec<Field> = keys
                .iter()
                .filter_map(|k| views.iter().find(|v| v.def.key == *k))
                .map(|v| field(v, sent.and_then(|s| s.get(v.def.key).map(String::as_str))))
                .collect();
            context! { name => name, fields => fields }
        })
        .collect();
    let (ping_ok, ping_message) = outcome.ping.unzip();
    Ok(render(
        web,
        viewer,
        outcome.status.unwrap_or(StatusCode::OK),
        "configuration.html",
        context! {
            admin_tab => "configuration", sections => sections, error => outcome.error,
            ping_ok => ping_ok, ping_message => ping_message, saved => outcome.saved,
            auth_enabled => web.app.auth.is_some(),
        },
    ))
}

/// `GET /admin/configuration`.
pub async fn show(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(q): Query<SavedQuery>,
) -> Response {
    let outcome = Outcome {
        saved: q.saved.is_some(),
        ..Outcome::default()
    };
    page(&web, &viewer, outcome).unwrap_or_else(|e| error_page(&web, &viewer, e))
}

/// `POST /admin/configuration`: `op=save` stores the editable settings of the form; `op=ping`
/// tests the directory with them, saving nothing. Unchecked boxes are `false`; a password
/// left empty keeps the stored one.
pub async fn change(State(web): State<Arc<Web>>, viewer: Viewer, body: Bytes) -> Response {
    let outcome = async {
        let Some(fields) = form::<Vec<(String, String)>>(&body) else {
            return Err(PageError::new(StatusCode::BAD_REQUEST, "error-csrf"));
        };
        let mut sent: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in fields {
            sent.insert(k, v);
        }
        if !viewer.csrf_ok(sent.get("_csrf").map(String::as_str)) {
            return Err(PageError::new(StatusCode::FORBIDDEN, "error-csrf"));
        }
        viewer.actor.require_admin()?;
        let registry = &web.app.registry;
        let label = |key: &str| {
            web.catalogues
                .text(viewer.locale, &format!("config-{key}"), &[])
        };
        // Every editable setting, from the form; a value that does not fit is named.
        let mut changes = BTreeMap::new();
        let mut shown = BTreeMap::new();
        for view in registry.setting_views().iter().filter(|v| v.editable) {
            let def = view.def;
            let raw = sent.get(def.key).cloned().unwrap_or_default();
            let value = match def.kind {
                SettingKind::Bool => Value::Bool(sent.contains_key(def.key)),
                _ => Value::from(raw.trim()),
            };
            shown.insert(
                def.key.to_owned(),
                match &value {
                    Value::Bool(b) => b.to_string(),
                    _ => raw.clone(),
                },
            );
            let fits =
                (def.kind == SettingKind::Secret && raw.is_empty()) || def.check(&value).is_ok();
            if !fits {
                let field = fluent_bundle::FluentValue::from(label(def.key));
                let error =
                    web.catalogues
                        .text(viewer.locale, "config-invalid", &[("field", field)]);
                return page(
                    &web,
                    &viewer,
                    Outcome {
                        status: Some(StatusCode::BAD_REQUEST),
                        sent: Some(shown),
                        error: Some(error),
                        ..Outcome::default()
                    },
                );
            }
            changes.insert(def.key.to_owned(), value);
        }
        let text = |key: &str| web.catalogues.text(viewer.locale, key, &[]);
        match sent.get("op").map(String::as_str) {
            Some("ping") => {
                let ping = match registry.ping_directory(&changes).await {
                    Ok(Ok(())) => (true, text("config-ping-ok")),
                    Ok(Err(why)) => (false, why),
                    Err(berth_registry::Error::Invalid(_)) => {
                        (false, text("config-ldap-incomplete"))
                    }
                    Err(e) => return Err(ApiError::from(e).into()),
                };
                page(
                    &web,
                    &viewer,
                    Outcome {
                        sent: Some(shown),
                        ping: Some(ping),
                        ..Outcome::default()
                    },
                )
            }
            Some("save") => match registry
                .update_settings(&viewer.initiator(), &changes)
                .await
            {
                Ok(_) => {
                    web.app.apply_settings();
                    Ok(see_other("/admin/configuration?saved=1", viewer.headers()))
                }
                Err(berth_registry::Error::Invalid(_)) => page(
                    &web,
                    &viewer,
                    Outcome {
                        status: Some(StatusCode::BAD_REQUEST),
                        sent: Some(shown),
                        error: Some(text("config-ldap-incomplete")),
                        ..Outcome::default()
                    },
                ),
                Err(e) => Err(ApiError::from(e).into()),
            },
            _ => Err(PageError::new(StatusCode::BAD_REQUEST, "error-csrf")),
        }
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(&web, &viewer, e))
}
