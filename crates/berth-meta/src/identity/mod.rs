//! Users, projects, project members, robot accounts and token signing keys, one submodule
//! each; here the paging and `WHERE`-clause helpers they (and other listings) share.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::MetaError;
use crate::store::MetadataStore;

mod keys;
mod members;
mod projects;
mod robots;
mod users;

pub use keys::StoredKey;
pub use members::{Member, MemberEntity};
pub(crate) use projects::project_repositories;
pub use projects::{Project, ProjectDelete, ProjectFilter, ProjectScope};
pub use robots::{NewRobot, Robot, RobotGrant, RobotUpdate, RobotWrite, RobotsOf};
pub use users::{User, UserProfile};

/// A page of a listing: skip `offset` rows, return at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows skipped.
    pub offset: u64,
    /// Most rows returned.
    pub limit: u64,
}

/// One page of a listing and how many rows the whole listing has.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    /// The rows of the page.
    pub items: Vec<T>,
    /// Rows in the whole listing.
    pub total: u64,
}

/// A value bound to a statement built at run time.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

/// A `WHERE` clause under construction: conditions joined by `AND`, and their values.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    sql: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    pub(crate) fn push(&mut self, sql: impl Into<String>, binds: impl IntoIterator<Item = Bind>) {
        self.sql.push(sql.into());
        self.binds.extend(binds);
    }

    pub(crate) fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        }
    }

    /// Runs `select … {where} {tail}` for a page and `SELECT COUNT(*) {from} {where}` for the total.
    pub(crate) async fn page(
        &self,
        pool: &sqlx::AnyPool,
        select: &str,
        from: &str,
        tail: &str,
        page: Page,
    ) -> Result<(Vec<AnyRow>, u64), MetaError> {
        let clause = self.clause();
        let sql = format!("{select} {from}{clause} {tail} LIMIT ? OFFSET ?");
        let mut query = sqlx::query(&sql);
        for b in &self.binds {
            query = bind(query, b);
        }
        let rows = query
            .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
        let count = format!("SELECT COUNT(*) {from}{clause}");
        let mut query = sqlx::query(&count);
        for b in &self.binds {
            query = bind(query, b);
        }
        let total: i64 = query.fetch_one(pool).await?.try_get(0)?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }
}

impl MetadataStore {
    /// The row `sql` selects with `key` bound, mapped by `map`.
    async fn fetch_by<T>(
        &self,
        sql: &str,
        key: Bind,
        map: fn(&AnyRow) -> Result<T, MetaError>,
    ) -> Result<Option<T>, MetaError> {
        let row = bind(sqlx::query(sql), &key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(map).transpose()
    }
}

pub(crate) fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    value: &Bind,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match value {
        Bind::Int(v) => query.bind(*v),
        Bind::Text(v) => query.bind(v.clone()),
    }
}
