//! Berth's registry service: the operations that change registry state, with their rules,
//! and the events they emit.
//!
//! Every caller — the HTTP API, the web UI, the jobs, the CLI — changes the registry through
//! [`Registry`], never through the stores directly. Each change is written to the metadata
//! database together with its audit entry, in one transaction ([`Registry::change`]): an
//! acknowledged change is never missing from the audit log. Refused attempts and failed
//! logins are recorded on their own ([`Registry::refused`]); pulls, the hot path, are queued
//! and written in batches ([`Registry::pulled`]). After a change commits, its [`Event`] goes
//! to every [`Subscriber`] (quotas, replication triggers and webhooks subscribe here).
//!
//! Dependencies point one way: core ← storage, meta ← auth ← registry ← api, jobs.

mod artifacts;
mod error;
mod event;
pub mod jobs;
mod projects;
mod pulls;
pub mod robots;
mod sessions;
pub mod settings;
mod uploads;
mod users;

use std::future::Future;
use std::sync::Arc;

use berth_core::Clock;
use berth_meta::{MetaError, MetadataStore};
use berth_storage::BlobStore;

pub use artifacts::{ArtifactError, PushedManifest};
pub use error::Error;
pub use event::{Event, EventKind, Initiator, Outcome, Subscriber, Who};
pub use jobs::JobsError;
pub use pulls::{FLUSH_EVERY, MAX_QUEUED, Pull, PullLog};
pub use robots::{CreatedRobot, RobotChange, RobotRequest, RobotScope};
pub use sessions::OpenedSession;
pub use settings::{Settings, SettingsBase};
pub use uploads::{Chunk, UploadError};
pub use users::{NewUser, check_username};

/// What the audit log records.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Record pulls (batched; see [`Registry::pulled`]).
    pub pulls: bool,
    /// When a user is deleted, replace their name in old entries (GDPR's right to be
    /// forgotten; Harbor's `gdpr.audit_logs`).
    pub forget_deleted_users: bool,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            pulls: true,
            forget_deleted_users: false,
        }
    }
}

/// The registry service. Cheap to share (`Arc`).
pub struct Registry {
    meta: MetadataStore,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    settings: AuditSettings,
    pulls: PullLog,
    subscribers: Vec<Arc<dyn Subscriber>>,
    /// Where the settings start from.
    base: SettingsBase,
    /// The settings as they apply now.
    live: tokio::sync::watch::Sender<Arc<Settings>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("blobs", &self.blobs.driver_name())
            .field("settings", &self.settings)
            .field("subscribers", &self.subscribers.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for dyn Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscriber")
    }
}

impl Registry {
    /// A registry service on `meta` and `blobs`, reading the time from `clock` (and making
    /// the store it writes through read it too).
    pub fn new(
        meta: MetadataStore,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        settings: AuditSettings,
    ) -> Self {
        Self {
            meta: meta.with_clock(clock.clone()),
            blobs,
            clock,
            settings,
            pulls: PullLog::default(),
            subscribers: Vec::new(),
            base: SettingsBase::default(),
            live: tokio::sync::watch::Sender::new(Arc::new(Settings::default())),
        }
    }

    /// Starts the settings from `base` (before the service is shared); stored values apply
    /// from the first [`refresh_settings`](Self::refresh_settings).
    pub fn with_settings(mut self, base: SettingsBase) -> Self {
        self.live = tokio::sync::watch::Sender::new(Arc::new(base.initial.clone()));
        self.base = base;
        self
    }

    /// Adds a follower of every event (before the service is shared).
    pub fn subscribe(&mut self, subscriber: Arc<dyn Subscriber>) {
        self.subscribers.push(subscriber);
    }

    /// The metadata store, for reads that carry no rules.
    pub fn meta(&self) -> &MetadataStore {
        &self.meta
    }

    /// The blob store, for reads (blob bytes, download URLs, health).
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The clock every layer reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The queue of pull entries (its backlog, for metrics and tests).
    pub fn pull_log(&self) -> &PullLog {
        &self.pulls
    }

    fn event(
        &self,
        initiator: &Initiator,
        project_id: Option<i64>,
        kind: EventKind,
        outcome: Outcome,
    ) -> Event {
        Event {
            at: self.clock.unix_millis(),
            initiator: initiator.clone(),
            project_id,
            kind,
            outcome,
        }
    }

    fn publish(&self, event: &Event) {
        for s in &self.subscribers {
            s.notify(event);
        }
    }

    /// Makes one change through `write`, which gets a store whose write records the event's
    /// audit entry in the change's own transaction. The event is published when that write
    /// committed; a write that changed nothing (unknown row, refused by a rule) records and
    /// publishes nothing.
    pub async fn change<T, F, Fut>(
        &self,
        initiator: &Initiator,
        project_id: Option<i64>,
        kind: EventKind,
        write: F,
    ) -> Result<T, MetaError>
    where
        F: FnOnce(MetadataStore) -> Fut,
        Fut: Future<Output = Result<T, MetaError>>,
    {
        let event = self.event(initiator, project_id, kind, Outcome::Success);
        let store = self.meta.recording(event.audit_entry());
        let out = write(store.clone()).await?;
        if store.recorded() {
            self.publish(&event);
        }
        Ok(out)
    }

    /// Records an attempt that was refused (no permission, a rule, a failed login).
    pub async fn refused(
        &self,
        initiator: &Initiator,
        project_id: Option<i64>,
        kind: EventKind,
        reason: impl Into<String>,
    ) -> Result<(), MetaError> {
        let event = self.event(initiator, project_id, kind, Outcome::Refused(reason.into()));
        self.meta.write_audit(&[event.audit_entry()]).await?;
        self.publish(&event);
        Ok(())
    }

    /// Records a successful event that changes nothing in the database (a login, a logout).
    pub async fn record(
        &self,
        initiator: &Initiator,
        project_id: Option<i64>,
        kind: EventKind,
    ) -> Result<(), MetaError> {
        let event = self.event(initiator, project_id, kind, Outcome::Success);
        self.meta.write_audit(&[event.audit_entry()]).await?;
        self.publish(&event);
        Ok(())
    }

    /// Deletes a user and their memberships. With `forget_deleted_users`, the user's name in
    /// earlier entries (as the actor, and as the user acted on) is then replaced by
    /// `deleted-user-<id>`. Returns whether the user existed.
    pub async fn delete_user(
        &self,
        initiator: &Initiator,
        id: i64,
        name: &str,
    ) -> Result<bool, MetaError> {
        let kind = EventKind::UserDeleted {
            name: name.to_owned(),
        };
        let deleted = self
            .change(
                initiator,
                None,
                kind,
                |m| async move { m.delete_user(id).await },
            )
            .await?;
        if deleted && self.settings.forget_deleted_users {
            let forgotten = self
                .meta
                .forget_audit_user(id, name, &format!("deleted-user-{id}"))
                .await?;
            tracing::info!(
                user = id,
                entries = forgotten,
                "forgot a deleted user's name in the audit log"
            );
        }
        Ok(deleted)
    }

    /// Records a pull: queued (or counted in the entry already queued for the same caller,
    /// address and reference), written by [`flush_pulls`](Self::flush_pulls) within a
    /// second. A lock and a hash; nothing when `audit.pulls` is off.
    pub fn pulled(&self, pull: &Pull<'_>) {
        if self.settings.pulls {
            self.pulls.push(pull, self.clock.unix_millis());
        }
    }

    /// Writes the queued pulls, then tells subscribers. Returns how many entries were written.
    pub async fn flush_pulls(&self) -> Result<usize, MetaError> {
        let written = self.pulls.flush(&self.meta).await?;
        for e in &written {
            self.publish(e);
        }
        Ok(written.len())
    }

    /// Writes queued pulls every [`FLUSH_EVERY`] until `stop` resolves, then once more.
    pub async fn run_pull_log(&self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut stop => break,
            }
            if let Err(e) = self.flush_pulls().await {
                tracing::warn!(error = %e, queued = self.pulls.backlog().0, "could not write the pull audit entries; retrying");
            }
        }
        if let Err(e) = self.flush_pulls().await {
            tracing::warn!(error = %e, lost = self.pulls.backlog().0, "pull audit entries not written at shutdown");
        }
    }
}
