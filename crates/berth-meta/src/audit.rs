//! The audit log: one row per change, written in the change's own transaction (see
//! [`MetadataStore::recording`]), or per refused attempt; read back with Harbor's filters.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged};
use crate::store::{MetadataStore, Tx, text};

/// One entry of the audit log, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When it happened (Unix milliseconds).
    pub op_time: i64,
    /// The project it belongs to, for the project's own log.
    pub project_id: Option<i64>,
    /// The acting user's id (users only), so that the name can be forgotten later.
    pub user_id: Option<i64>,
    /// `user`, `robot` or `anonymous`.
    pub principal: String,
    /// The acting user or robot's name, or the name a failed login tried.
    pub username: String,
    /// `create`, `update`, `delete`, `pull`, `login`, `logout`.
    pub operation: String,
    /// `artifact`, `tag`, `repository`, `project`, `member`, `user`, `robot`, `session`,
    /// `configuration`.
    pub resource_type: String,
    /// What was acted on, e.g. `library/app@sha256:…`, `library/app:v1`, a project name.
    pub resource: String,
    /// The client's address: the first hop not among the trusted proxies.
    pub client_address: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Why it was refused, or what changed.
    pub detail: Option<String>,
}

/// An entry as stored, with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Row id: increases with every entry written.
    pub id: i64,
    /// The entry.
    pub entry: AuditEntry,
}

/// A field of the audit log that queries filter and sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditField {
    /// Row id.
    Id,
    /// When (Unix milliseconds).
    OpTime,
    /// Acting name.
    Username,
    /// Operation.
    Operation,
    /// Resource type.
    ResourceType,
    /// Resource.
    Resource,
    /// Client address.
    ClientAddress,
    /// Outcome.
    Outcome,
    /// Kind of principal.
    Principal,
}

impl AuditField {
    fn column(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::OpTime => "op_time",
            Self::Username => "username",
            Self::Operation => "operation",
            Self::ResourceType => "resource_type",
            Self::Resource => "resource",
            Self::ClientAddress => "client_address",
            Self::Outcome => "outcome",
            Self::Principal => "principal",
        }
    }
}

/// A value compared with a field: text, or a number for `id` and `op_time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditValue {
    /// Text.
    Text(String),
    /// A number.
    Int(i64),
}

impl AuditValue {
    fn bind(&self) -> Bind {
        match self {
            Self::Text(t) => Bind::Text(t.clone()),
            Self::Int(i) => Bind::Int(*i),
        }
    }
}

/// One condition of an audit log query (all of a query's terms must hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTerm {
    /// The field equals the value.
    Equals(AuditField, AuditValue),
    /// The field contains the text (case-sensitive, no wildcards).
    Contains(AuditField, String),
    /// The field lies within the bounds (each inclusive, either open).
    Range(AuditField, Option<AuditValue>, Option<AuditValue>),
    /// The field equals one of the values.
    AnyOf(AuditField, Vec<AuditValue>),
}

/// A query of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this project's entries.
    pub project_id: Option<i64>,
    /// Conditions, all of which must hold.
    pub terms: Vec<AuditTerm>,
    /// Sort keys, each descending when `true`; newest first when empty. Ties are broken by id.
    pub sort: Vec<(AuditField, bool)>,
}

const COLUMNS: &str = "id, op_time, project_id, user_id, principal, username, operation, \
                       resource_type, resource, client_address, outcome, detail";
const INSERT: &str = "INSERT INTO audit_log (op_time, project_id, user_id, principal, username, \
                      operation, resource_type, resource, client_address, outcome, detail) \
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

fn insert_query(
    entry: &AuditEntry,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(INSERT)
        .bind(entry.op_time)
        .bind(entry.project_id)
        .bind(entry.user_id)
        .bind(entry.principal.as_str())
        .bind(entry.username.as_str())
        .bind(entry.operation.as_str())
        .bind(entry.resource_type.as_str())
        .bind(entry.resource.as_str())
        .bind(entry.client_address.as_str())
        .bind(entry.outcome.as_str())
        .bind(entry.detail.as_deref())
}

/// Writes `entry` in the transaction `tx`.
pub(crate) async fn insert(tx: &mut Tx<'_>, entry: &AuditEntry) -> Result<(), MetaError> {
    insert_query(entry).execute(&mut **tx).await?;
    Ok(())
}

fn record(r: &AnyRow) -> Result<AuditRecord, MetaError> {
    Ok(AuditRecord {
        id: r.try_get(0)?,
        entry: AuditEntry {
            op_time: r.try_get(1)?,
            project_id: r.try_get(2)?,
            user_id: r.try_get(3)?,
            principal: text(r, 4)?.unwrap_or_default(),
            username: text(r, 5)?.unwrap_or_default(),
            operation: text(r, 6)?.unwrap_or_default(),
            resource_type: text(r, 7)?.unwrap_or_default(),
            resource: text(r, 8)?.unwrap_or_default(),
            client_address: text(r, 9)?.unwrap_or_default(),
            outcome: text(r, 10)?.unwrap_or_default(),
            detail: text(r, 11)?,
        },
    })
}

/// Rows one purge statement deletes at most: short statements, short locks.
const PURGE_BATCH: i64 = 1000;

impl MetadataStore {
    /// Writes entries that record no change of their own (refused attempts, failed logins,
    /// pulls), in one transaction.
    pub async fn write_audit(&self, entries: &[AuditEntry]) -> Result<(), MetaError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for entry in entries {
            insert(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A page of the audit log.
    pub async fn audit_log(
        &self,
        query: &AuditQuery,
        page: Page,
    ) -> Result<Paged<AuditRecord>, MetaError> {
        let mut c = Conditions::default();
        if let Some(project) = query.project_id {
            c.push("project_id = ?", [Bind::Int(project)]);
        }
        for term in &query.terms {
            match term {
                AuditTerm::Equals(f, v) => c.push(format!("{} = ?", f.column()), [v.bind()]),
                AuditTerm::Contains(f, t) => c.push(
                    format!("INSTR({}, ?) > 0", f.column()),
                    [Bind::Text(t.clone())],
                ),
                AuditTerm::Range(f, low, high) => {
                    if let Some(low) = low {
                        c.push(format!("{} >= ?", f.column()), [low.bind()]);
                    }
                    if let Some(high) = high {
                        c.push(format!("{} <= ?", f.column()), [high.bind()]);
                    }
                }
                AuditTerm::AnyOf(f, values) if values.is_empty() => {
                    let _ = f;
                    c.push("1 = 0", []);
                }
                AuditTerm::AnyOf(f, values) => {
                    let marks = vec!["?"; values.len()].join(", ");
                    c.push(
                        format!("{} IN ({marks})", f.column()),
                        values.iter().map(AuditValue::bind),
                    );
                }
            }
        }
        let mut order: Vec<String> = query
            .sort
            .iter()
            .map(|(f, desc)| format!("{} {}", f.column(), if *desc { "DESC" } else { "ASC" }))
            .collect();
        if query.sort.is_empty() {
            order.push("op_time DESC".to_owned());
        }
        if !query.sort.iter().any(|(f, _)| *f == AuditField::Id) {
            let desc = query.sort.first().is_none_or(|(_, d)| *d);
            order.push(format!("id {}", if desc { "DESC" } else { "ASC" }));
        }
        let (rows, total) = c
            .page(
                &self.pool,
                &format!("SELECT {COLUMNS}"),
                "FROM audit_log",
                &format!("ORDER BY {}", order.join(", ")),
                page,
            )
            .await?;
        Ok(Paged {
            items: rows.iter().map(record).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// How many entries older than `before` (Unix milliseconds) with one of `operations` (all
    /// operations when empty) a purge would delete.
    pub async fn count_audit_before(
        &self,
        before: i64,
        operations: &[String],
    ) -> Result<u64, MetaError> {
        let (clause, binds) = purge_condition(before, operations);
        let sql = format!("SELECT COUNT(*) FROM audit_log WHERE {clause}");
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = crate::identity::bind(q, b);
        }
        let n: i64 = q.fetch_one(&self.pool).await?.try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes at most one batch of the entries [`count_audit_before`](Self::count_audit_before)
    /// counts, oldest first; returns how many it deleted (0: none are left). Each batch is its
    /// own short statement, so a purge never holds long locks.
    pub async fn purge_audit_batch(
        &self,
        before: i64,
        operations: &[String],
    ) -> Result<u64, MetaError> {
        let (clause, binds) = purge_condition(before, operations);
        // The ids first: MySQL cannot DELETE … ORDER BY … LIMIT with a subquery on the table.
        let sql =
            format!("SELECT id FROM audit_log WHERE {clause} ORDER BY id LIMIT {PURGE_BATCH}");
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for b in &binds {
            q = match b {
                Bind::Int(v) => q.bind(*v),
                Bind::Text(v) => q.bind(v.clone()),
            };
        }
        let ids = q.fetch_all(&self.pool).await?;
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
            return Ok(0);
        };
        let sql = format!("DELETE FROM audit_log WHERE id >= ? AND id <= ? AND {clause}");
        let mut q = sqlx::query(&sql).bind(*first).bind(*last);
        for b in &binds {
            q = crate::identity::bind(q, b);
        }
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    /// Replaces the name of user `user_id` (called `name`) with `replacement` in every entry
    /// that names them: as the actor (by id, or by name where a token gave the name only), and
    /// as the user acted on. Returns the entries changed.
    pub async fn forget_audit_user(
        &self,
        user_id: i64,
        name: &str,
        replacement: &str,
    ) -> Result<u64, MetaError> {
        let mut tx = self.pool.begin().await?;
        let actor = sqlx::query(
            "UPDATE audit_log SET username = ? WHERE user_id = ? \
             OR (user_id IS NULL AND principal = 'user' AND username = ?)",
        )
        .bind(replacement)
        .bind(user_id)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let subject = sqlx::query(
            "UPDATE audit_log SET resource = ? WHERE resource_type = 'user' AND resource = ?",
        )
        .bind(replacement)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(actor + subject)
    }

    /// Where forwarding to `name` stands: the last entry id delivered. The first call starts
    /// it at the newest entry (forwarding covers what happens once it is turned on).
    pub async fn audit_cursor(&self, name: &str, now: i64) -> Result<i64, MetaError> {
        sqlx::query(&self.dialect.insert_ignore(
            "audit_cursors (name, last_id, updated_at) \
             SELECT ?, COALESCE(MAX(id), 0), ? FROM audit_log WHERE 1 = 1",
        ))
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT last_id FROM audit_cursors WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Moves the cursor of `name` from `from` to `to`; `false` if it was not at `from`
    /// (another node moved it).
    pub async fn advance_audit_cursor(
        &self,
        name: &str,
        from: i64,
        to: i64,
        now: i64,
    ) -> Result<bool, MetaError> {
        let n = sqlx::query(
            "UPDATE audit_cursors SET last_id = ?, updated_at = ? WHERE name = ? AND last_id = ?",
        )
        .bind(to)
        .bind(now)
        .bind(name)
        .bind(from)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Entries with ids above `after`, oldest first, at most `limit` (forwarding).
    pub async fn audit_after(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, MetaError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }
}

fn purge_condition(before: i64, operations: &[String]) -> (String, Vec<Bind>) {
    let mut clause = "op_time < ?".to_owned();
    let mut binds = vec![Bind::Int(before)];
    if !operations.is_empty() {
        clause.push_str(&format!(
            " AND operation IN ({})",
            vec!["?"; operations.len()].join(", ")
        ));
        binds.extend(operations.iter().map(|o| Bind::Text(o.clone())));
    }
    (clause, binds)
}
