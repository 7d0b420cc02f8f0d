//! Blob storage for Berth: a content-addressed store of verified blobs plus the upload sessions
//! that feed it.
//!
//! **Invariant:** a blob is visible under its digest only after its bytes were verified against
//! that digest and moved into place atomically. Upload data lives apart from committed blobs
//! until then, so nothing partial is ever served.
//!
//! The store knows nothing of repositories or HTTP: which repository may see which blob is the
//! metadata store's business, and the API crate turns request bodies into byte streams.

mod direct;
mod error;
mod filesystem;
mod locks;
mod s3;

use std::io;
use std::ops::Range;
use std::time::SystemTime;

use async_trait::async_trait;
use berth_core::{Digest, DigestAlgorithm, UploadHasher};
use bytes::Bytes;
use futures_util::stream::BoxStream;

pub use error::StorageError;
pub use filesystem::FilesystemStore;
pub use locks::{LocalLocks, UploadLocks};
pub use s3::{MIN_PART, S3Settings, S3Store};

/// A stream of blob bytes, produced without buffering the blob in memory.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// What an append to an upload achieved.
#[derive(Clone)]
pub struct Appended {
    /// Bytes written by this append.
    pub written: u64,
    /// The running hash of the whole upload, including these bytes.
    pub hasher: UploadHasher,
    /// Set when the incoming stream failed part way (client gone, body error): the bytes
    /// before the failure were written and hashed and are counted in `written`.
    pub interrupted: Option<String>,
}

/// A committed blob as [`BlobStore::list_blobs`] and [`BlobStore::stat_blob`] see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When its bytes were last written: the file's modification time, the object's
    /// `Last-Modified` (on S3 to the millisecond in listings but to the second from
    /// [`BlobStore::stat_blob`], an HTTP date). Committing content that is already stored does
    /// not change it.
    pub modified: SystemTime,
}

/// One page of [`BlobStore::list_blobs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobPage {
    /// Committed blobs in digest-string order, at most the `limit` asked for.
    pub blobs: Vec<BlobInfo>,
    /// The cursor of the next page (the last digest in `blobs`), to be passed as `after`, when
    /// more blobs may follow; `None` when the listing is complete. (The page after a full one
    /// can be empty, e.g. when only stray names followed on S3.)
    pub next: Option<Digest>,
}

/// The digest a blob stored as `<alg>/<prefix>/<name>` holds: `None` for names that are no
/// blob's (temporary files, strays, a digest under the wrong prefix).
pub(crate) fn stored_digest(alg: &str, prefix: &str, name: &str) -> Option<Digest> {
    if name.get(..2) != Some(prefix) {
        return None;
    }
    format!("{alg}:{name}").parse().ok()
}

/// A content-addressed blob store with resumable uploads.
///
/// Upload sessions are identified by an opaque id chosen by the caller. Their offset and hash
/// state are recorded by the caller (the metadata store); the store keeps their bytes and makes
/// sure only one request at a time writes to a session ([`BlobStore::upload_writer`]).
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Short name of the driver, for logs and `config check`.
    fn driver_name(&self) -> &'static str;

    /// Checks that the store is reachable and writable (readiness).
    async fn check(&self) -> Result<(), StorageError>;

    /// Streams `range` of a committed blob. The range must lie within the blob.
    async fn read(&self, digest: &Digest, range: Range<u64>) -> Result<ByteStream, StorageError>;

    /// A URL from which the client may download a committed blob directly (a presigned S3 URL),
    /// if the store offers one: the registry then answers `GET` with a redirect instead of
    /// streaming the bytes itself. `None` (the default): stream through [`BlobStore::read`].
    async fn download_url(&self, _digest: &Digest) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    /// Creates the storage for a new, empty upload.
    async fn start_upload(&self, id: &str) -> Result<(), StorageError>;

    /// Takes exclusive write access to an upload: [`StorageError::Busy`] while another writer
    /// holds it. Access ends when the writer is dropped or committed, and also when the process
    /// holding it dies, so a crashed node never blocks a session.
    async fn upload_writer(&self, id: &str) -> Result<Box<dyn UploadWriter>, StorageError>;

    /// Deletes an upload's data. Deleting a missing upload is not an error.
    async fn cancel_upload(&self, id: &str) -> Result<(), StorageError>;

    /// Every upload in storage with the time its data last changed (for purging abandoned ones).
    async fn list_uploads(&self) -> Result<Vec<(String, SystemTime)>, StorageError>;

    /// One page of committed blobs in digest-string order (for garbage collection): at most
    /// `limit` (taken as 1 if 0) of those after `after`, the [`BlobPage::next`] of the previous
    /// page (`None` for the first). Names in the blob area that are not digests (temporary
    /// files, strays) are skipped. A store is never read whole into memory: the filesystem
    /// driver reads one `<alg>/<2 hex>` directory at a time, S3 lists with `StartAfter`.
    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<BlobPage, StorageError>;

    /// The size and last change of a committed blob; `None` if it is not stored.
    async fn stat_blob(&self, digest: &Digest) -> Result<Option<BlobInfo>, StorageError>;

    /// Deletes committed blobs; deleting a missing blob is not an error. Durable before it
    /// returns where the store makes commits durable (the filesystem driver with `fsync` syncs
    /// each directory it removed from). On failure some of `digests` may have been deleted:
    /// the call can be repeated. Whether a blob is still referenced is the caller's business.
    async fn delete_blobs(&self, digests: &[Digest]) -> Result<(), StorageError>;
}

/// Exclusive write access to one upload.
#[async_trait]
pub trait UploadWriter: Send + Sync {
    /// Appends `body` at `offset`, hashing on the way with `hasher` (the state at `offset`).
    /// Anything stored past `offset` (bytes of a writer that failed before its progress was
    /// recorded) is discarded first.
    async fn append(
        &mut self,
        offset: u64,
        hasher: UploadHasher,
        body: ByteStream,
    ) -> Result<Appended, StorageError>;

    /// Hashes the first `len` bytes from storage: the fallback when no saved hash state can be
    /// used (a digest other than sha256, or a lost state).
    async fn digest(
        &mut self,
        algorithm: DigestAlgorithm,
        len: u64,
    ) -> Result<Digest, StorageError>;

    /// Makes the first `size` bytes visible as blob `digest`, which the caller has verified.
    /// Durable before it returns. The upload's storage is gone afterwards.
    async fn commit(self: Box<Self>, digest: &Digest, size: u64) -> Result<(), StorageError>;

    /// Ends this writer's access before the response goes out, so that the client's next
    /// request finds the upload free. Dropping a writer releases it too, but a store whose
    /// release is a network call (S3 leases) may finish that a moment later.
    async fn release(self: Box<Self>) {}
}
