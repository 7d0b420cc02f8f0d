//! Blob uploads: sessions started, appended to, verified, committed and cancelled; mounts;
//! blobs removed from a repository.
//!
//! A session is a row in the metadata store (offset, running hash state) plus an upload in the
//! blob store; no node keeps anything about it in memory, so any node can continue any session.
//! A request that writes first takes the blob store's exclusive writer for the upload (released
//! even if its node dies), then reads the recorded offset, appends there while hashing, and
//! records the new offset and hash state before letting go. Finishing compares the saved hash
//! with the digest asked for, so the common push (start, one streamed append, finish with the
//! digest) never reads its bytes twice.

use berth_core::{Digest, DigestAlgorithm, RepositoryName, UploadHasher};
use berth_meta::{BlobUnlink, MetaError};
use berth_storage::{ByteStream, StorageError, UploadWriter};

use crate::Registry;

/// Why an upload operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No such session in the repository (finished, cancelled or never started).
    #[error("upload {0} is not known (finished, cancelled or never started)")]
    Unknown(String),
    /// Another request holds the session's writer.
    #[error("upload {0} is being written by another request; retry when it has finished")]
    Busy(String),
    /// A chunk that does not start where the session ends.
    #[error(
        "chunk starts at byte {start}, but the upload has {size} bytes: send the chunk that starts at {size}"
    )]
    OutOfOrder {
        /// Where the chunk claims to start.
        start: u64,
        /// The session's size.
        size: u64,
    },
    /// The body ended before its end; what arrived was kept (`size` bytes in all).
    #[error("the request body ended early: {reason}")]
    Interrupted {
        /// What the transport reported.
        reason: String,
        /// The session's size now.
        size: u64,
    },
    /// The chunk had another length than announced; what arrived was kept.
    #[error("the chunk was announced as {expected} bytes but had {actual}")]
    LengthMismatch {
        /// The announced length.
        expected: u64,
        /// The bytes received.
        actual: u64,
        /// The session's size now.
        size: u64,
    },
    /// The content has another digest than the one asked for; the session is discarded.
    #[error(
        "the uploaded content ({size} bytes) has digest {actual}, not {expected}; the upload was discarded"
    )]
    DigestMismatch {
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
        /// Bytes uploaded.
        size: u64,
    },
    /// The session was finished or cancelled by another request while this one wrote.
    #[error("upload {0} was cancelled or finished while this request wrote to it")]
    Vanished(String),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The blob store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Bytes for a session: a request body, with the position the client says it starts at and
/// the length it announced, when it said.
pub struct Chunk {
    /// Where the client says the chunk starts (`Content-Range`); checked against the session.
    pub start: Option<u64>,
    /// The length announced; a body of another length is an error (after keeping it).
    pub length: Option<u64>,
    /// The bytes.
    pub body: ByteStream,
}

impl Chunk {
    /// A body with nothing announced about it.
    pub fn stream(body: ByteStream) -> Self {
        Self {
            start: None,
            length: None,
            body,
        }
    }
}

/// A session's state after an append.
struct Progress {
    size: u64,
    /// `None` when the hash state was lost: finishing re-hashes from storage.
    hasher: Option<UploadHasher>,
}

/// Appends `chunk` at `offset`. `Err`: nothing changed. `Ok` with an error: some bytes were
/// written and must be recorded before the error is answered.
async fn append(
    writer: &mut dyn UploadWriter,
    offset: u64,
    hasher: Option<UploadHasher>,
    chunk: Chunk,
) -> Result<(Progress, Option<UploadError>), UploadError> {
    if let Some(start) = chunk.start.filter(|&s| s != offset) {
        return Err(UploadError::OutOfOrder {
            start,
            size: offset,
        });
    }
    let known_hash = hasher.is_some();
    let appended = writer
        .append(offset, hasher.unwrap_or_default(), chunk.body)
        .await?;
    let size = offset + appended.written;
    let progress = Progress {
        size,
        hasher: known_hash.then_some(appended.hasher),
    };
    if let Some(reason) = appended.interrupted {
        return Ok((progress, Some(UploadError::Interrupted { reason, size })));
    }
    if let Some(expected) = chunk.length.filter(|&n| n != appended.written) {
        let error = UploadError::LengthMismatch {
            expected,
            actual: appended.written,
            size,
        };
        return Ok((progress, Some(error)));
    }
    Ok((progress, None))
}

/// A session opened for writing by one request.
struct Session {
    id: String,
    size: u64,
    hasher: Option<UploadHasher>,
    writer: Box<dyn UploadWriter>,
}

impl Session {
    async fn open(
        registry: &Registry,
        name: &RepositoryName,
        id: &str,
    ) -> Result<Self, UploadError> {
        // The writer first, the recorded state second: whoever wrote before us recorded its
        // progress before letting go of the writer, so what we read matches the bytes.
        let writer = match registry.blobs.upload_writer(id).await {
            Ok(w) => w,
            Err(StorageError::NotFound { .. }) => return Err(UploadError::Unknown(id.into())),
            Err(StorageError::Busy { .. }) => return Err(UploadError::Busy(id.into())),
            Err(e) => return Err(e.into()),
        };
        let Some(s) = registry.meta.upload(name.as_str(), id).await? else {
            writer.release().await;
            return Err(UploadError::Unknown(id.into()));
        };
        let hasher = match s.hash_state {
            Some(state) => UploadHasher::restore(&state),
            None if s.size == 0 => Some(UploadHasher::default()),
            None => None,
        };
        Ok(Self {
            id: s.id,
            size: s.size,
            hasher,
            writer,
        })
    }

    async fn append(
        &mut self,
        chunk: Chunk,
    ) -> Result<(Progress, Option<UploadError>), UploadError> {
        append(&mut *self.writer, self.size, self.hasher.clone(), chunk).await
    }

    /// Records progress (while the writer is still held).
    async fn record(&self, registry: &Registry, progress: &Progress) -> Result<(), UploadError> {
        let state = progress.hasher.as_ref().map(UploadHasher::save);
        if registry
            .meta
            .record_upload(&self.id, self.size, progress.size, state.as_deref())
            .await?
        {
            Ok(())
        } else {
            Err(UploadError::Vanished(self.id.clone()))
        }
    }
}

impl Registry {
    /// Opens an upload session in `name`; returns its id.
    pub async fn start_upload(&self, name: &RepositoryName) -> Result<String, UploadError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.blobs.start_upload(&id).await?;
        self.meta.create_upload(&id, name.as_str()).await?;
        Ok(id)
    }

    /// Links blob `digest` into `name` from `from` (or from any repository when `from` is
    /// `None`: the caller checked that it may read them all). `false`: not mountable, the
    /// client uploads it instead.
    pub async fn mount_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        from: Option<&RepositoryName>,
    ) -> Result<bool, UploadError> {
        Ok(self
            .meta
            .mount_blob(name.as_str(), digest, from.map(RepositoryName::as_str))
            .await?)
    }

    /// Uploads a whole blob in one request: no session row is needed, since no other request
    /// can know this upload. Returns its size.
    pub async fn upload_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        chunk: Chunk,
    ) -> Result<u64, UploadError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.blobs.start_upload(&id).await?;
        let outcome = async {
            let mut writer = self.blobs.upload_writer(&id).await?;
            let (progress, error) =
                append(&mut *writer, 0, Some(UploadHasher::default()), chunk).await?;
            if let Some(e) = error {
                return Err(e);
            }
            self.commit(name, &id, writer, &progress, digest, false)
                .await
        }
        .await;
        if outcome.is_err() {
            let _ = self.blobs.cancel_upload(&id).await;
        }
        outcome
    }

    /// The size of session `id` in `name`.
    pub async fn upload_size(&self, name: &RepositoryName, id: &str) -> Result<u64, UploadError> {
        match self.meta.upload(name.as_str(), id).await? {
            Some(session) => Ok(session.size),
            None => Err(UploadError::Unknown(id.into())),
        }
    }

    /// Appends a chunk to session `id`; returns the session's new size. Bytes that arrived
    /// before an error are kept and recorded.
    pub async fn append_upload(
        &self,
        name: &RepositoryName,
        id: &str,
        chunk: Chunk,
    ) -> Result<u64, UploadError> {
        let mut session = Session::open(self, name, id).await?;
        let outcome = session.append(chunk).await;
        let recorded = match &outcome {
            Ok((progress, _)) => session.record(self, progress).await,
            Err(_) => Ok(()),
        };
        // Free before answering: the client's next request may come at once, to any node.
        session.writer.release().await;
        recorded?;
        match outcome? {
            (_, Some(error)) => Err(error),
            (progress, None) => Ok(progress.size),
        }
    }

    /// Finishes session `id`: appends a last chunk if there is one, verifies the content
    /// against `digest`, moves it into the blob store and links it into `name`, holding the
    /// session's writer throughout. A mismatch ends the session. Returns the blob's size.
    pub async fn finish_upload(
        &self,
        name: &RepositoryName,
        id: &str,
        digest: &Digest,
        last: Option<Chunk>,
    ) -> Result<u64, UploadError> {
        let mut session = Session::open(self, name, id).await?;
        let progress = match last {
            Some(chunk) => match session.append(chunk).await {
                Ok((progress, None)) => progress,
                Ok((progress, Some(error))) => {
                    session.record(self, &progress).await?;
                    session.writer.release().await;
                    return Err(error);
                }
                Err(e) => {
                    session.writer.release().await;
                    return Err(e);
                }
            },
            None => Progress {
                size: session.size,
                hasher: session.hasher.clone(),
            },
        };
        if progress.size != session.size {
            // Keep the last chunk even if committing fails below.
            session.record(self, &progress).await?;
        }
        let Session { writer, .. } = session;
        self.commit(name, id, writer, &progress, digest, true).await
    }

    /// Cancels session `id`.
    pub async fn cancel_upload(&self, name: &RepositoryName, id: &str) -> Result<(), UploadError> {
        if !self.meta.delete_upload(name.as_str(), id).await? {
            return Err(UploadError::Unknown(id.into()));
        }
        self.blobs.cancel_upload(id).await?;
        Ok(())
    }

    /// Removes blob `digest` from repository `name` (its bytes stay until garbage collection).
    pub async fn unlink_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
    ) -> Result<BlobUnlink, MetaError> {
        self.meta.unlink_blob(name.as_str(), digest).await
    }

    /// Verifies an upload against `digest`, moves it into the blob store and links it. A
    /// mismatch ends the session: its bytes are not what the client meant to send.
    async fn commit(
        &self,
        name: &RepositoryName,
        id: &str,
        mut writer: Box<dyn UploadWriter>,
        progress: &Progress,
        digest: &Digest,
        has_session: bool,
    ) -> Result<u64, UploadError> {
        let actual = match (&progress.hasher, digest.algorithm()) {
            (Some(hasher), DigestAlgorithm::Sha256) => hasher.digest(),
            (_, algorithm) => writer.digest(algorithm, progress.size).await?,
        };
        if &actual != digest {
            if has_session {
                self.meta.delete_upload(name.as_str(), id).await?;
                self.blobs.cancel_upload(id).await?;
            }
            return Err(UploadError::DigestMismatch {
                expected: digest.clone(),
                actual,
                size: progress.size,
            });
        }
        writer.commit(digest, progress.size).await?;
        self.meta
            .link_blob(
                name.as_str(),
                digest,
                progress.size,
                has_session.then_some(id),
            )
            .await?;
        Ok(progress.size)
    }
}
