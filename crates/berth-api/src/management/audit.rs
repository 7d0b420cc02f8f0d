//! The audit log: `GET /audit-logs` (system administrators) and
//! `GET /projects/{project}/logs` (the project's developers and up), in Harbor's shapes.
//!
//! `q` takes Harbor's terms, joined by commas: `k=v` (equal), `k=~v` (contains),
//! `k=[a~b]` (range; `[a~]` and `[~b]` open), `k={a b}` (any of). `op_time` takes
//! `2006-01-02 15:04:05` or RFC 3339 in UTC, or Unix seconds. `sort` takes fields with `-`
//! for descending, joined by commas.

use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use berth_auth::ProjectOp;
use berth_meta::{AuditField, AuditQuery, AuditRecord, AuditTerm, AuditValue};
use serde_json::{Value, json};

use super::{Actor, ApiError, Paging, Query, project_for};
use crate::AppState;

/// `GET /audit-logs`: every entry, for system administrators.
pub async fn list(
    State(app): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    actor.require_admin()?;
    respond(&app, &uri, None).await
}

/// `GET /projects/{project}/logs`: the project's entries, for its developers and up.
pub async fn project_logs(
    State(app): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Path(project): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let (project, _) = project_for(&app, &actor, &headers, &project, ProjectOp::ReadLogs).await?;
    respond(&app, &uri, Some(project.id)).await
}

async fn respond(
    app: &AppState,
    uri: &axum::http::Uri,
    project_id: Option<i64>,
) -> Result<Response, ApiError> {
    let params = Query::of(uri);
    let paging = Paging::from_query(&params)?;
    let query = AuditQuery {
        project_id,
        terms: parse_q(params.get("q").unwrap_or(""))?,
        sort: parse_sort(params.get("sort").unwrap_or(""))?,
    };
    let page = app.registry.meta().audit_log(&query, paging.page()).await?;
    let items: Vec<Value> = page.items.iter().map(entry_json).collect();
    Ok(paging.respond(uri, page.total, items))
}

fn entry_json(r: &AuditRecord) -> Value {
    let e = &r.entry;
    json!({
        "id": r.id,
        "username": e.username,
        "resource": e.resource,
        "resource_type": e.resource_type,
        "operation": e.operation,
        "op_time": op_time(e.op_time),
        "operation_description": e.detail.clone().unwrap_or_default(),
        "is_successful": e.outcome == "success",
        "outcome": e.outcome,
        "client_address": e.client_address,
        "principal": e.principal,
        "project_id": e.project_id,
    })
}

/// Unix milliseconds as RFC 3339 in UTC, with milliseconds.
fn op_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let base = super::time(secs);
    // `time` gives `…:SSZ`; put the milliseconds before the `Z`.
    match base.strip_suffix('Z') {
        Some(head) => format!("{head}.{:03}Z", ms.rem_euclid(1000)),
        None => base,
    }
}

const FIELDS: &str = "username, operation, resource, resource_type, op_time, client_address, \
                      outcome, principal";

fn field(key: &str) -> Result<AuditField, ApiError> {
    Ok(match key {
        "username" => AuditField::Username,
        "operation" => AuditField::Operation,
        "resource" => AuditField::Resource,
        "resource_type" => AuditField::ResourceType,
        "op_time" => AuditField::OpTime,
        "client_address" => AuditField::ClientAddress,
        "outcome" => AuditField::Outcome,
        "principal" => AuditField::Principal,
        other => {
            return Err(ApiError::bad_request(format!(
                "q cannot filter on {other:?}; it takes {FIELDS}"
            )));
        }
    })
}

fn value(f: AuditField, raw: &str) -> Result<AuditValue, ApiError> {
    if f == AuditField::OpTime {
        return parse_time(raw.trim()).map(AuditValue::Int).ok_or_else(|| {
            ApiError::bad_request(format!(
                "op_time {raw:?} is not a time: use 2006-01-02 15:04:05, RFC 3339 (UTC) or Unix seconds"
            ))
        });
    }
    Ok(AuditValue::Text(raw.to_owned()))
}

/// Splits `q` at the commas that are not inside `[…]` or `{…}`.
fn split_terms(q: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in q.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&q[start..]);
    terms
}

/// Parses Harbor's `q`.
pub fn parse_q(q: &str) -> Result<Vec<AuditTerm>, ApiError> {
    if q.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_terms(q)
        .into_iter()
        .map(|term| {
            let (key, raw) = term.split_once('=').ok_or_else(|| {
                ApiError::bad_request(format!(
                    "q term {term:?} is not k=v, k=~v, k=[a~b] or k={{a b}}"
                ))
            })?;
            let f = field(key.trim())?;
            // These columns hold ASCII only (MySQL compares them as such): anything else
            // cannot match, and is a mistake worth saying.
            let ascii = matches!(
                f,
                AuditField::Operation
                    | AuditField::ResourceType
                    | AuditField::ClientAddress
                    | AuditField::Outcome
                    | AuditField::Principal
            );
            if ascii && !raw.is_ascii() {
                return Err(ApiError::bad_request(format!(
                    "q: {} takes ASCII values, not {raw:?}",
                    key.trim()
                )));
            }
            if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                let (low, high) = inner.split_once('~').ok_or_else(|| {
                    ApiError::bad_request(format!("range {raw:?} needs a ~ between its bounds"))
                })?;
                let bound = |b: &str| -> Result<Option<AuditValue>, ApiError> {
                    if b.trim().is_empty() {
                        Ok(None)
                    } else {
                        value(f, b).map(Some)
                    }
                };
                let (low, high) = (bound(low)?, bound(high)?);
                if low.is_none() && high.is_none() {
                    return Err(ApiError::bad_request(format!(
                        "range {raw:?} needs at least one bound"
                    )));
                }
                return Ok(AuditTerm::Range(f, low, high));
            }
            if let Some(inner) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                let values = inner
                    .split_whitespace()
                    .map(|v| value(f, v))
                    .collect::<Result<Vec<_>, _>>()?;
                if values.is_empty() {
                    return Err(ApiError::bad_request(format!("set {raw:?} is empty")));
                }
                return Ok(AuditTerm::AnyOf(f, values));
            }
            if let Some(fragment) = raw.strip_prefix('~') {
                if f == AuditField::OpTime {
                    return Err(ApiError::bad_request(
                        "op_time takes a time or a range, not ~",
                    ));
                }
                return Ok(AuditTerm::Contains(f, fragment.to_owned()));
            }
            Ok(AuditTerm::Equals(f, value(f, raw)?))
        })
        .collect()
}

/// Parses `sort`: fields joined by commas, `-` for descending.
pub fn parse_sort(sort: &str) -> Result<Vec<(AuditField, bool)>, ApiError> {
    sort.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (name, desc) = match s.strip_prefix('-') {
                Some(n) => (n, true),
                None => (s, false),
            };
            let f = match name {
                "id" => AuditField::Id,
                other => field(other).map_err(|_| {
                    ApiError::bad_request(format!(
                        "cannot sort by {other:?}; sort takes id, {FIELDS}"
                    ))
                })?,
            };
            Ok((f, desc))
        })
        .collect()
}

/// Unix milliseconds from `2006-01-02 15:04:05`, `2006-01-02T15:04:05Z` (optionally with
/// fractional seconds) or Unix seconds.
fn parse_time(s: &str) -> Option<i64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok()?.checked_mul(1000);
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next()?.parse::<i64>().ok()?,
        d.next()?.parse::<u32>().ok()?,
        d.next()?.parse::<u32>().ok()?,
    );
    if d.next().is_some()
        || !(0..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time, None),
    };
    let mut t = hms.split(':');
    let (h, min, sec) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    if t.next().is_some() || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let ms = match fraction {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let digits: String = f.chars().chain("000".chars()).take(3).collect();
            digits.parse::<i64>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let days = days_from_civil(y, m, day);
    Some(((days * 86_400 + h * 3600 + min * 60 + sec) * 1000) + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_query_terms() {
        let terms = parse_q(
            "username=alice,resource=~app,op_time=[2021-01-01 00:00:00~2021-01-02T00:00:00Z],operation={create delete}",
        )
        .unwrap();
        assert_eq!(
            terms,
            vec![
                AuditTerm::Equals(AuditField::Username, AuditValue::Text("alice".into())),
                AuditTerm::Contains(AuditField::Resource, "app".into()),
                AuditTerm::Range(
                    AuditField::OpTime,
                    Some(AuditValue::Int(1_609_459_200_000)),
                    Some(AuditValue::Int(1_609_545_600_000))
                ),
                AuditTerm::AnyOf(
                    AuditField::Operation,
                    vec![
                        AuditValue::Text("create".into()),
                        AuditValue::Text("delete".into())
                    ]
                ),
            ]
        );
        assert_eq!(
            parse_q("op_time=[1700000000~]").unwrap(),
            vec![AuditTerm::Range(
                AuditField::OpTime,
                Some(AuditValue::Int(1_700_000_000_000)),
                None
            )]
        );
        assert_eq!(
            parse_q("op_time=[~2023-11-14 22:13:20.5]").unwrap(),
            vec![AuditTerm::Range(
                AuditField::OpTime,
                None,
                Some(AuditValue::Int(1_700_000_000_500))
            )]
        );
        assert!(parse_q("").unwrap().is_empty());
        for bad in [
            "password=x",
            "username",
            "op_time=[~]",
            "op_time=[a~b]",
            "op_time=yesterday",
            "op_time=~2021",
            "operation={}",
            "op_time=[2021-13-01 00:00:00~]",
            "op_time=[2021-01-01 24:00:00~]",
            "op_time=[99999999999999-01-01 00:00:00~]",
            "operation=créer",
            "outcome={success échec}",
        ] {
            assert!(parse_q(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sort_keys() {
        assert_eq!(
            parse_sort("-op_time,username").unwrap(),
            vec![(AuditField::OpTime, true), (AuditField::Username, false)]
        );
        assert_eq!(parse_sort("id").unwrap(), vec![(AuditField::Id, false)]);
        assert!(parse_sort("secret").is_err());
        assert!(parse_sort("").unwrap().is_empty());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_time("2000-02-29T12:00:00Z"), Some(951_825_600_000));
        assert_eq!(parse_time("1969-12-31 23:59:59"), Some(-1000));
        assert_eq!(op_time(1_700_000_000_042), "2023-11-14T22:13:20.042Z");
    }
}
