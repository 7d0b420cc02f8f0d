//! Why an operation on users, robots, projects or members did not happen.

use std::time::Duration;

use berth_meta::MetaError;

/// A refused or failed operation. The API renders each kind once, in each client's format.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks a rule about its values (a name, a password, a duration).
    #[error("{0}")]
    Invalid(String),
    /// What it acts on does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// The credentials are wrong or cannot be used this way.
    #[error("{0}")]
    Unauthorized(String),
    /// A rule forbids it to this caller (a wrong current password, one's own account).
    #[error("{0}")]
    Forbidden(String),
    /// The thing is in a state that does not allow it (a project that still has content).
    #[error("{0}")]
    Precondition(String),
    /// Too many failed password checks; retry after this long.
    #[error("too many failed attempts; try again in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Authentication (the directory, the rate limiter) failed.
    #[error(transparent)]
    Auth(#[from] berth_auth::AuthError),
    /// Something that should not fail did (hashing a password).
    #[error("{0}")]
    Internal(String),
}

/// An argon2id hash of `secret`, computed off the async threads.
pub(crate) async fn hash_secret(secret: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || berth_auth::password::hash(&secret))
        .await
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))?
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}
