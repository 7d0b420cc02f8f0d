//! Write transactions and audit recording: a [`recording`](MetadataStore::recording) handle
//! commits its audit entry in the transaction of the write it records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::MetaError;
use crate::audit::{self, AuditEntry};
use crate::store::{MetadataStore, Tx};

/// An audit entry waiting for the write it records, and whether that write committed it.
#[derive(Debug)]
pub(super) struct Journal {
    entry: AuditEntry,
    written: AtomicBool,
}

impl MetadataStore {
    /// A handle to the same store whose writes each record `entry` in the audit log, in the
    /// write's own transaction: the entry exists exactly when the change was committed. A write
    /// that changes nothing (a refusal, an unknown row) records nothing.
    pub fn recording(&self, entry: AuditEntry) -> Self {
        Self {
            journal: Some(Arc::new(Journal {
                entry,
                written: AtomicBool::new(false),
            })),
            ..self.clone()
        }
    }

    /// Whether a write through this [`recording`](Self::recording) handle committed its entry.
    pub fn recorded(&self) -> bool {
        self.journal
            .as_ref()
            .is_some_and(|j| j.written.load(Ordering::Acquire))
    }

    /// Commits `tx`, recording the audit entry of this handle in it first.
    pub(crate) async fn commit(&self, tx: Tx<'_>) -> Result<(), MetaError> {
        self.commit_in_project(tx, None).await
    }

    /// Commits `tx` as [`commit`](Self::commit) does; the entry belongs to `project` (a
    /// project created in `tx`) unless it names a project already.
    pub(crate) async fn commit_in_project(
        &self,
        mut tx: Tx<'_>,
        project: Option<i64>,
    ) -> Result<(), MetaError> {
        let Some(journal) = &self.journal else {
            tx.commit().await?;
            return Ok(());
        };
        if journal.entry.project_id.is_none() && project.is_some() {
            let entry = AuditEntry {
                project_id: project,
                ..journal.entry.clone()
            };
            audit::insert(&mut tx, &entry).await?;
        } else {
            audit::insert(&mut tx, &journal.entry).await?;
        }
        tx.commit().await?;
        journal.written.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs one statement, with this handle's audit entry in the same transaction when it
    /// changed a row. Returns the rows changed.
    pub(crate) async fn execute_recorded<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64, MetaError> {
        if self.journal.is_none() {
            return Ok(query.execute(&self.pool).await?.rows_affected());
        }
        let mut tx = self.pool.begin().await?;
        let n = query.execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            tx.rollback().await?;
        } else {
            self.commit(tx).await?;
        }
        Ok(n)
    }
}
