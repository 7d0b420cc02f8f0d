//! Job logs: appending a line under a claim (keeping the newest [`MAX_LOG_LINES`]) and
//! reading a job's log a page at a time.

use sqlx::Row;

use super::cut;
use crate::MetaError;
use crate::identity::{Bind, Conditions, Page, Paged};
use crate::store::{MetadataStore, text};

/// A line of a job's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLogLine {
    /// Id (increasing).
    pub id: i64,
    /// When.
    pub at: i64,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// The line.
    pub message: String,
}

/// Most lines kept per job; older ones are dropped as new ones come.
pub const MAX_LOG_LINES: u64 = 2000;
/// Longest log line kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_LOG_LINE: usize = 2000;

impl MetadataStore {
    /// Appends a line to a claimed job's log (if the claim holds), dropping the oldest lines
    /// beyond [`MAX_LOG_LINES`]. Returns whether the claim held.
    pub async fn log_job(
        &self,
        id: i64,
        fence: i64,
        level: &str,
        message: &str,
        now: i64,
    ) -> Result<bool, MetaError> {
        let n = sqlx::query(
            "INSERT INTO job_logs (job_id, at, level, message) \
             SELECT id, ?, ?, ? FROM jobs WHERE id = ? AND fence = ?",
        )
        .bind(now)
        .bind(level)
        .bind(cut(message, MAX_LOG_LINE))
        .bind(id)
        .bind(fence)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let cutoff: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM job_logs WHERE job_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        )
        .bind(id)
        .bind(i64::try_from(MAX_LOG_LINES).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(cutoff) = cutoff {
            sqlx::query("DELETE FROM job_logs WHERE job_id = ? AND id <= ?")
                .bind(id)
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
        }
        Ok(true)
    }

    /// A page of a job's log, oldest first.
    pub async fn job_log(&self, id: i64, page: Page) -> Result<Paged<JobLogLine>, MetaError> {
        let mut c = Conditions::default();
        c.push("job_id = ?", [Bind::Int(id)]);
        let (rows, total) = c
            .page(
                &self.pool,
                "SELECT id, at, level, message",
                "FROM job_logs",
                "ORDER BY id",
                page,
            )
            .await?;
        Ok(Paged {
            items: rows
                .iter()
                .map(|r| {
                    Ok(JobLogLine {
                        id: r.try_get(0)?,
                        at: r.try_get(1)?,
                        level: text(r, 2)?.unwrap_or_default(),
                        message: text(r, 3)?.unwrap_or_default(),
                    })
                })
                .collect::<Result<_, MetaError>>()?,
            total,
        })
    }
}
