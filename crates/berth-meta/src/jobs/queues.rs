//! The job system at a glance: pausing kinds, pending and running jobs per kind (queues),
//! totals of ended jobs, and the nodes running workers.

use sqlx::Row;

use super::{JobState, count};
use crate::MetaError;
use crate::store::{MetadataStore, text};

/// Pending jobs of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Kind.
    pub kind: String,
    /// Pending jobs.
    pub pending: u64,
    /// Running jobs.
    pub running: u64,
    /// The run time of the oldest pending job that is due.
    pub oldest_due: Option<i64>,
    /// Whether the kind is paused.
    pub paused: bool,
}

/// A node running workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNode {
    /// Node id.
    pub node: String,
    /// Host name.
    pub host: String,
    /// Workers.
    pub workers: u32,
    /// Started.
    pub started_at: i64,
    /// Last heartbeat.
    pub heartbeat_at: i64,
}

impl MetadataStore {
    /// Pauses or resumes the claiming of a kind's jobs.
    pub async fn pause_kind(&self, kind: &str, paused: bool) -> Result<(), MetaError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            &self
                .dialect
                .insert_ignore("job_kinds (kind, paused) VALUES (?, 0)"),
        )
        .bind(kind)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE job_kinds SET paused = ? WHERE kind = ?")
            .bind(i64::from(paused))
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pending and running jobs per kind, with the kinds' pause flags; `kinds` are listed even
    /// when they have no jobs.
    pub async fn job_queues(&self, kinds: &[&str], now: i64) -> Result<Vec<Queue>, MetaError> {
        let mut queues: std::collections::BTreeMap<String, Queue> = kinds
            .iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    Queue {
                        kind: (*k).to_owned(),
                        pending: 0,
                        running: 0,
                        oldest_due: None,
                        paused: false,
                    },
                )
            })
            .collect();
        let rows = sqlx::query(
            "SELECT kind, \
             COUNT(CASE WHEN state = 'pending' THEN 1 END), \
             COUNT(CASE WHEN state = 'running' THEN 1 END), \
             MIN(CASE WHEN state = 'pending' AND run_at <= ? THEN run_at END) \
             FROM jobs WHERE state IN ('pending', 'running') GROUP BY kind",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let kind = text(r, 0)?.unwrap_or_default();
            let q = queues.entry(kind.clone()).or_insert_with(|| Queue {
                kind,
                pending: 0,
                running: 0,
                oldest_due: None,
                paused: false,
            });
            q.pending = count(r, 1)?;
            q.running = count(r, 2)?;
            q.oldest_due = r.try_get::<Option<i64>, _>(3).ok().flatten();
        }
        let paused = sqlx::query("SELECT kind FROM job_kinds WHERE paused = 1")
            .fetch_all(&self.pool)
            .await?;
        for r in &paused {
            let kind = text(r, 0)?.unwrap_or_default();
            if let Some(q) = queues.get_mut(&kind) {
                q.paused = true;
            }
        }
        Ok(queues.into_values().collect())
    }

    /// Jobs that ended, by kind and state, with their total run time (ms, from first start to
    /// end): the job system's history, cluster-wide.
    pub async fn job_totals(&self) -> Result<Vec<(String, JobState, u64, u64)>, MetaError> {
        let rows = sqlx::query(
            "SELECT kind, state, COUNT(*), \
             CAST(COALESCE(SUM(finished_at - started_at), 0) AS SIGNED) \
             FROM jobs WHERE state IN ('succeeded', 'failed', 'stopped') GROUP BY kind, state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let state = text(r, 1)?.unwrap_or_default();
                Ok((
                    text(r, 0)?.unwrap_or_default(),
                    JobState::parse(&state).unwrap_or(JobState::Failed),
                    count(r, 2)?,
                    count(r, 3)?,
                ))
            })
            .collect()
    }

    /// Records that `node` runs `workers` workers (a heartbeat; the first one registers it).
    pub async fn job_node_heartbeat(
        &self,
        node: &str,
        host: &str,
        workers: u32,
        now: i64,
    ) -> Result<(), MetaError> {
        let n = sqlx::query("UPDATE job_nodes SET heartbeat_at = ?, workers = ? WHERE node = ?")
            .bind(now)
            .bind(i64::from(workers))
            .bind(node)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            sqlx::query(&self.dialect.insert_ignore(
                "job_nodes (node, host, workers, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(node)
            .bind(host)
            .bind(i64::from(workers))
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Nodes that reported since `since`, by name; older ones are forgotten.
    pub async fn job_nodes(&self, since: i64) -> Result<Vec<JobNode>, MetaError> {
        sqlx::query("DELETE FROM job_nodes WHERE heartbeat_at < ?")
            .bind(since)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT node, host, workers, started_at, heartbeat_at FROM job_nodes ORDER BY node",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobNode {
                    node: text(r, 0)?.unwrap_or_default(),
                    host: text(r, 1)?.unwrap_or_default(),
                    workers: u32::try_from(count(r, 2)?).unwrap_or(0),
                    started_at: r.try_get(3)?,
                    heartbeat_at: r.try_get(4)?,
                })
            })
            .collect()
    }
}
