/// A metadata store failure.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The database cannot be reached right now (connection refused, pool exhausted, I/O).
    #[error("metadata database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("metadata database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database URL names a database Berth does not support.
    #[error(
        "unsupported database URL {0:?}: expected sqlite://PATH or mysql://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for MetaError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(e)
            }
            other => Self::Database(other),
        }
    }
}
