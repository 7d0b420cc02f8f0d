//! Berth's metadata store: repositories, blobs and their links to repositories, manifests,
//! tags, referrers and upload sessions, kept in SQL through sqlx.
//!
//! All SQL lives in this crate. One implementation serves every dialect through sqlx's `Any`
//! driver (SQLite and MySQL both take `?` placeholders); where the dialects differ the
//! statement comes from `Dialect`. A new dialect is a new `Dialect` variant, its fragments and
//! a migrations directory, not a rewrite.
//!
//! **Invariant:** the metadata store decides visibility. A blob is served from a repository only
//! when it is linked to it here, and a manifest is stored only in the same transaction that
//! checked every blob and manifest it references.

mod audit;
mod browse;
mod cache;
mod error;
mod identity;
mod jobs;
mod settings;
mod store;
mod tags;

pub use audit::{AuditEntry, AuditField, AuditQuery, AuditRecord, AuditTerm, AuditValue};
pub use browse::{Artifact, RepositorySummary, TagCreate};
pub use error::MetaError;
pub use identity::{
    Member, MemberEntity, NewRobot, Page, Paged, Project, ProjectDelete, ProjectFilter,
    ProjectScope, Robot, RobotGrant, RobotUpdate, RobotWrite, RobotsOf, StoredKey, User,
    UserProfile,
};
pub use jobs::{
    Execution, Heartbeat, Job, JobEnd, JobFilter, JobLogLine, JobNode, JobState, MAX_LOG_LINE,
    MAX_LOG_LINES, NewExecution, NewJob, Queue, Schedule,
};
pub use settings::StoredSetting;
pub use store::{
    BlobUnlink, ManifestDelete, ManifestPut, MetadataStore, NewManifest, PoolSettings, Referrer,
    StoredManifest, UploadSession,
};
pub use tags::{Lines, TagPage};
