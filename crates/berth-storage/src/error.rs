use std::io;
use std::path::PathBuf;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The blob or upload does not exist in storage.
    #[error("{what} not found in storage")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Another writer holds the upload.
    #[error("upload {id} is being written by another request")]
    Busy {
        /// The upload.
        id: String,
    },
    /// The upload's bytes disagree with the size recorded for it.
    #[error("upload {id} holds {actual} bytes, but {expected} were recorded")]
    SizeMismatch {
        /// The upload.
        id: String,
        /// Bytes recorded by the metadata store.
        expected: u64,
        /// Bytes found in storage.
        actual: u64,
    },
    /// A remote store (S3) failed or refused.
    #[error("{context} ({location}): {message}")]
    Backend {
        /// What was being done.
        context: &'static str,
        /// The bucket and key involved.
        location: String,
        /// What the store said.
        message: String,
    },
    /// An I/O error from the backend.
    #[error("{context} ({path}): {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            context,
            path,
            source,
        }
    }
}
