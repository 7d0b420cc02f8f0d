//! `/configurations` and `/ldap/ping` in Harbor's shapes, for system administrators: the
//! settings changed while the registry runs (stored in the database, applied on every node
//! within seconds; those pinned by the operator are not editable), and a test of the
//! directory's settings before they are saved.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use berth_registry::settings::SettingKind;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{Actor, ApiError, ClientAddress, json_body};
use crate::AppState;

/// `GET /configurations`: every setting as `{"value": …, "editable": …}` (passwords are
/// never shown, as in Harbor).
pub async fn get(State(app): State<AppState>, actor: Actor) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let mut body = Map::new();
    for view in app.registry.setting_views() {
        if view.def.kind == SettingKind::Secret {
            continue;
        }
        body.insert(
            view.def.key.to_owned(),
            json!({"value": view.value, "editable": view.editable}),
        );
    }
    Ok(axum::Json(Value::Object(body)).into_response())
}

/// The body of a change: an object of keys and values.
fn changes(body: &[u8]) -> Result<BTreeMap<String, Value>, ApiError> {
    if body.is_empty() {
        return Ok(BTreeMap::new());
    }
    json_body(body)
}

/// `PUT /configurations`: changes the settings given (`{"key": value, …}`); all or none.
pub async fn put(
    State(app): State<AppState>,
    actor: Actor,
    address: ClientAddress,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let changes = changes(&body)?;
    app.registry
        .update_settings(&actor.initiator(address), &changes)
        .await?;
    app.apply_settings();
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `POST /ldap/ping`: tries the directory with the current settings changed by the body's
/// (Harbor's `LdapConf`: `ldap_url`, `ldap_search_dn`, …; `ldap_connection_timeout` is
/// `ldap_timeout`). Answers `{"success": …, "message": …}`.
pub async fn ldap_ping(
    State(app): State<AppState>,
    actor: Actor,
    body: Bytes,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    let mut overrides = changes(&body)?;
    if let Some(timeout) = overrides.remove("ldap_connection_timeout") {
        overrides.insert("ldap_timeout".into(), timeout);
    }
    // Harbor's `ldap_scope` (Berth always searches the subtree) is accepted and ignored.
    overrides.remove("ldap_scope");
    let outcome = app.registry.ping_directory(&overrides).await?;
    let body = match outcome {
        Ok(()) => json!({"success": true, "message": "the directory answered"}),
        Err(why) => json!({"success": false, "message": why}),
    };
    Ok(axum::Json(body).into_response())
}
