//! The filesystem driver: local disk, or a shared mount such as CephFS.
//!
//! ```text
//! <root>/blobs/<algorithm>/<first 2 hex>/<hex>   committed blobs, immutable once renamed here
//! <root>/uploads/<upload id>                     bytes of an upload session in progress
//! <root>/tmp/                                    readiness probes
//! ```
//! Uploads and blobs share one filesystem, so a commit is a `rename`: atomic, and no byte is
//! copied. Blobs are served by mapping windows of the file into memory and handing the pages to
//! the socket, so they are never copied through a user-space buffer and memory does not grow with
//! blob size.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use berth_core::{Digest, DigestAlgorithm, DigestHasher, UploadHasher};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task;

use crate::{
    Appended, BlobInfo, BlobPage, BlobStore, ByteStream, StorageError, UploadWriter, stored_digest,
};

/// Bytes mapped per chunk when serving a blob. Larger windows mean fewer syscalls; the window
/// bounds how much of a blob a response holds mapped at once.
const READ_WINDOW: u64 = 4 << 20;
/// Bytes past the window being sent that a read asks the disk for ahead of time: several
/// reads in flight at once, which a disk needs to reach its full speed.
const READ_AHEAD: u64 = 3 * READ_WINDOW;
/// Offsets of mappings are aligned to this (a multiple of every page size Linux uses).
const MAP_ALIGN: u64 = 64 << 10;
/// Bytes gathered from the network before they are handed to the writing thread.
const HANDOFF: usize = 256 << 10;
/// Batches queued between the network task and the hashing thread of an upload.
const WRITE_QUEUE: usize = 8;
/// Batches hashed but not yet written (1 MiB: enough to hash on while a write waits for the
/// disk). With `WRITE_QUEUE`, this bounds the memory an upload holds to about
/// `(WRITE_QUEUE + HASHED_QUEUE) * HANDOFF` plus the 1 MiB write buffer.
const HASHED_QUEUE: usize = 4;

/// Blob storage in a directory tree.
#[derive(Debug, Clone)]
pub struct FilesystemStore {
    root: Arc<PathBuf>,
    fsync: bool,
    direct_writes: bool,
}

impl FilesystemStore {
    /// Opens (creating if needed) a store rooted at `root`. With `fsync`, committed blobs are
    /// flushed to stable storage before they become visible.
    pub fn open(root: impl Into<PathBuf>, fsync: bool) -> Result<Self, StorageError> {
        let root = root.into();
        for dir in ["blobs", "uploads", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(StorageError::io("creating directory", &path))?;
        }
        Ok(Self {
            root: Arc::new(root),
            fsync,
            direct_writes: false,
        })
    }

    /// Writes upload bytes with `O_DIRECT` where the filesystem allows it: about a fifth less
    /// CPU per pushed byte (no page-cache copy, little left for the commit's fsync), but a blob
    /// pulled right after its push is read from the disk rather than from memory.
    pub fn with_direct_writes(mut self, direct: bool) -> Self {
        self.direct_writes = direct;
        self
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf, StorageError> {
        // Ids come from the metadata store, but never let one escape the uploads directory.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(StorageError::NotFound {
                what: format!("upload {id:?}"),
            });
        }
        Ok(self.root.join("uploads").join(id))
    }
}

fn not_found_or(
    context: &'static str,
    path: &Path,
    what: impl FnOnce() -> String,
) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_owned();
    move |e| {
        if e.kind() == io::ErrorKind::NotFound {
            StorageError::NotFound { what: what() }
        } else {
            StorageError::Io {
                context,
                path,
                source: e,
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Io {
            context: "storage worker",
            path: PathBuf::new(),
            source: io::Error::other(e),
        })?
}

/// Maps `len` bytes of `file` at `offset` without reading them.
fn map_range(file: &File, offset: u64, len: u64) -> io::Result<(memmap2::Mmap, usize)> {
    let aligned = offset - offset % MAP_ALIGN;
    let lead = (offset - aligned) as usize;
    #[allow(unsafe_code)]
    // SAFETY: committed blob files are immutable: they are created complete under another name
    // and renamed into place, never written or truncated afterwards. Deleting one unlinks it,
    // which leaves existing mappings valid.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(aligned)
            .len(lead + len as usize)
            .map(file)
    }?;
    Ok((map, lead))
}

/// Asks the kernel to start reading `len` bytes of `file` at `offset` into the page cache.
fn will_need(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: posix_fadvise only reads its integer arguments; the descriptor is open for the
    // duration of the call (borrowed from `file`).
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
    }
}

/// Maps `len` bytes of `file` at `offset` and returns them as `Bytes` backed by the mapping,
/// resident: the window is read in one request rather than faulted in page by page, and the
/// next windows (up to `end`) are asked for ahead, so a blob that is not in memory streams at
/// the disk's pace instead of one read-around at a time.
fn map_window(
    file: &File,
    path: &Path,
    offset: u64,
    len: u64,
    end: u64,
) -> Result<Bytes, StorageError> {
    let (map, lead) =
        map_range(file, offset, len).map_err(StorageError::io("mapping blob", path))?;
    // Hints only: where the kernel does not take them, pages fault in as they are read. The
    // kernel skips what is cached or already being read, so asking again is cheap.
    let ahead = (end - offset).min(len + READ_AHEAD);
    will_need(file, offset, ahead);
    let _ = map.advise(memmap2::Advice::PopulateRead);
    Ok(Bytes::from_owner(map).slice(lead..))
}

/// The names in `dir`, sorted (bytewise, which for the ASCII names of the blob tree is digest
/// order). A directory that is not there (removed meanwhile) or a file in the place of one
/// has none; names that are not UTF-8 are no blob's and are left out.
fn sorted_names(dir: &Path) -> Result<Vec<String>, StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(StorageError::io("listing blobs", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StorageError::io("listing blobs", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Size and modification time of the blob file at `path`; `None` if there is none (or
/// something other than a file is in its place).
fn blob_info(path: &Path, digest: Digest) -> Result<Option<BlobInfo>, StorageError> {
    let meta = match fs::metadata(path) {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("reading blob metadata", path)(e)),
    };
    let modified = meta
        .modified()
        .map_err(StorageError::io("reading blob metadata", path))?;
    Ok(Some(BlobInfo {
        digest,
        size: meta.len(),
        modified,
    }))
}

/// Walks `blobs/<alg>/<2 hex>/<hex>` in name order, which is digest-string order, from past
/// `after`, reading one `<2 hex>` directory at a time, until `limit` blobs and one more (to
/// know whether a next page exists) are found.
fn list_blob_tree(
    blobs: &Path,
    after: Option<&Digest>,
    limit: usize,
) -> Result<BlobPage, StorageError> {
    let limit = limit.max(1);
    let cursor = after.map(|d| (d.algorithm().as_str(), &d.hex()[..2], d.as_str()));
    let mut found = Vec::with_capacity(limit.min(4096) + 1);
    'walk: for alg in sorted_names(blobs)? {
        if cursor.is_some_and(|(a, _, _)| alg.as_str() < a) {
            continue;
        }
        let alg_dir = blobs.join(&alg);
        for prefix in sorted_names(&alg_dir)? {
            if prefix.len() != 2 {
                continue;
            }
            if cursor.is_some_and(|(a, p, _)| alg == a && prefix.as_str() < p) {
                continue;
            }
            let dir = alg_dir.join(&prefix);
            for name in sorted_names(&dir)? {
                let Some(digest) = stored_digest(&alg, &prefix, &name) else {
                    continue;
                };
                if cursor.is_some_and(|(_, _, d)| digest.as_str() <= d) {
                    continue;
                }
                if let Some(info) = blob_info(&dir.join(&name), digest)? {
                    found.push(info);
                    if found.len() > limit {
                        break 'walk;
                    }
                }
            }
        }
    }
    let next = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|b| b.digest.clone())
    } else {
        None
    };
    Ok(BlobPage { blobs: found, next })
}

#[async_trait]
impl BlobStore for FilesystemStore {
    fn driver_name(&self) -> &'static str {
        "filesystem"
    }

    async fn check(&self) -> Result<(), StorageError> {
        let probe = self
            .root
            .join("tmp")
            .join(format!("ready-{}", uuid::Uuid::new_v4()));
        blocking(move || {
            fs::write(&probe, b"ok")
                .map_err(StorageError::io("writing readiness probe", &probe))?;
            fs::remove_file(&probe).map_err(StorageError::io("removing readiness probe", &probe))
        })
        .await
    }

    async fn read(&self, digest: &Digest, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let path = self.blob_path(digest);
        let what = digest.to_string();
        let file = blocking({
            let path = path.clone();
            move || {
                File::open(&path).map_err(not_found_or("opening blob", &path, || {
                    format!("blob {what}")
                }))
            }
        })
        .await?;
        let file = Arc::new(file);
        let path = Arc::new(path);
        let stream = futures_util::stream::try_unfold(range.start, move |pos| {
            let (file, path) = (file.clone(), path.clone());
            let end = range.end;
            async move {
                if pos >= end {
                    return Ok(None);
                }
                let len = (end - pos).min(READ_WINDOW);
                let chunk = blocking(move || map_window(&file, &path, pos, len, end))
                    .await
                    .map_err(io::Error::other)?;
                Ok(Some((chunk, pos + len)))
            }
        });
        Ok(stream.boxed())
    }

    async fn start_upload(&self, id: &str) -> Result<(), StorageError> {
        let path = self.upload_path(id)?;
        blocking(move || {
            File::create(&path)
                .map(drop)
                .map_err(StorageError::io("creating upload", &path))
        })
        .await
    }

    async fn upload_writer(&self, id: &str) -> Result<Box<dyn UploadWriter>, StorageError> {
        let path = self.upload_path(id)?;
        let id = id.to_owned();
        let file = blocking({
            let (path, id) = (path.clone(), id.clone());
            move || {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(not_found_or("opening upload", &path, || {
                        format!("upload {id}")
                    }))?;
                // flock: exclusive between processes and nodes (CephFS and NFS honour it), and
                // released by the kernel when the holder dies.
                match file.try_lock() {
                    Ok(()) => Ok(file),
                    Err(TryLockError::WouldBlock) => Err(StorageError::Busy { id }),
                    Err(TryLockError::Error(e)) => {
                        Err(StorageError::io("locking upload", &path)(e))
                    }
                }
            }
        })
        .await?;
        Ok(Box::new(FsUploadWriter {
            file: Arc::new(file),
            path: Arc::new(path),
            blob_root: self.clone(),
        }))
    }

    async fn list_uploads(&self) -> Result<Vec<(String, SystemTime)>, StorageError> {
        let dir = self.root.join("uploads");
        blocking(move || {
            let mut uploads = Vec::new();
            let entries = fs::read_dir(&dir).map_err(StorageError::io("listing uploads", &dir))?;
            for entry in entries {
                let entry = entry.map_err(StorageError::io("listing uploads", &dir))?;
                let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                    continue; // removed meanwhile
                };
                if let Ok(id) = entry.file_name().into_string() {
                    uploads.push((id, modified));
                }
            }
            Ok(uploads)
        })
        .await
    }

    async fn cancel_upload(&self, id: &str) -> Result<(), StorageError> {
        let path = self.upload_path(id)?;
        blocking(move || match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::io("removing upload", &path)(e))
            }
            _ => Ok(()),
        })
        .await
    }

    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<BlobPage, StorageError> {
        let blobs = self.root.join("blobs");
        let after = after.cloned();
        blocking(move || list_blob_tree(&blobs, after.as_ref(), limit)).await
    }

    async fn stat_blob(&self, digest: &Digest) -> Result<Option<BlobInfo>, StorageError> {
        let path = self.blob_path(digest);
        let digest = digest.clone();
        blocking(move || blob_info(&path, digest)).await
    }

    async fn delete_blobs(&self, digests: &[Digest]) -> Result<(), StorageError> {
        let paths: Vec<PathBuf> = digests.iter().map(|d| self.blob_path(d)).collect();
        let fsync = self.fsync;
        blocking(move || {
            let mut touched = BTreeSet::new();
            let mut failed = None;
            for path in &paths {
                match fs::remove_file(path) {
                    Ok(()) => {
                        if let Some(dir) = path.parent() {
                            touched.insert(dir.to_owned());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        failed = Some(StorageError::io("removing blob", path)(e));
                        break;
                    }
                }
            }
            // What was removed stays removed after a crash, even when a later one failed.
            // The emptied directories stay: a commit may be about to rename into one.
            if fsync {
                for dir in &touched {
                    File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(StorageError::io("syncing blob directory", dir))?;
                }
            }
            failed.map_or(Ok(()), Err)
        })
        .await
    }
}

/// Hashes the batches from `rx` on a thread of its own while this thread writes the same
/// batches to `out`, so that a write waiting for the disk does not hold up the hash: the bytes
/// hashed and the hasher. A failed write stops both, and then the sender (its next send fails).
fn hash_and_write(
    mut rx: mpsc::Receiver<Vec<Bytes>>,
    mut hasher: UploadHasher,
    out: &mut impl Write,
) -> io::Result<(u64, UploadHasher)> {
    let (to_disk, hashed) = std::sync::mpsc::sync_channel::<Vec<Bytes>>(HASHED_QUEUE);
    std::thread::scope(|scope| {
        let hashing = scope.spawn(move || {
            let mut written = 0u64;
            while let Some(batch) = rx.blocking_recv() {
                for chunk in &batch {
                    hasher.update(chunk);
                    written += chunk.len() as u64;
                }
                if to_disk.send(batch).is_err() {
                    break; // the write failed
                }
            }
            (written, hasher)
        });
        let wrote = hashed
            .iter()
            .try_for_each(|batch| batch.iter().try_for_each(|chunk| out.write_all(chunk)));
        // After a failed write, this makes the hashing thread's next send fail.
        drop(hashed);
        let done = hashing
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))?;
        wrote.map(|()| done)
    })
}

/// Exclusive writer of one upload file; the flock lives as long as the open file.
struct FsUploadWriter {
    file: Arc<File>,
    path: Arc<PathBuf>,
    blob_root: FilesystemStore,
}

#[async_trait]
impl UploadWriter for FsUploadWriter {
    async fn append(
        &mut self,
        offset: u64,
        hasher: UploadHasher,
        mut body: ByteStream,
    ) -> Result<Appended, StorageError> {
        let (file, path) = (self.file.clone(), self.path.clone());
        let direct = self.blob_root.direct_writes;
        let (tx, rx) = mpsc::channel::<Vec<Bytes>>(WRITE_QUEUE);
        // Hashing and writing run on two threads of their own while this task keeps reading
        // the network: the three overlap (a write that waits for the disk no longer holds up
        // the hash), and none blocks the async runtime. Both threads see the same buffers.
        let writer = task::spawn_blocking(move || -> Result<(u64, UploadHasher), StorageError> {
            file.set_len(offset)
                .map_err(StorageError::io("truncating upload", &*path))?;
            let mut out = crate::direct::UploadFileWriter::new(&file, &path, offset, direct)
                .map_err(StorageError::io("opening upload", &*path))?;
            let (written, hasher) = hash_and_write(rx, hasher, &mut out)
                .and_then(|done| out.finish().map(|()| done))
                .map_err(StorageError::io("writing upload", &*path))?;
            Ok((written, hasher))
        });
        let mut interrupted = None;
        // Network reads arrive in pieces of a few KiB; handing each to the writing thread would
        // cost a wake-up apiece. Batch them (without copying) up to HANDOFF bytes first.
        let mut batch = Vec::new();
        let mut batched = 0;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    batched += chunk.len();
                    batch.push(chunk);
                    if batched >= HANDOFF {
                        batched = 0;
                        if tx.send(std::mem::take(&mut batch)).await.is_err() {
                            break; // the writer failed; its error is reported below
                        }
                    }
                }
                Err(e) => {
                    interrupted = Some(e.to_string());
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch).await;
        }
        drop(tx);
        let (written, hasher) = writer.await.map_err(|e| StorageError::Io {
            context: "upload writer",
            path: PathBuf::new(),
            source: io::Error::other(e),
        })??;
        Ok(Appended {
            written,
            hasher,
            interrupted,
        })
    }

    async fn digest(
        &mut self,
        algorithm: DigestAlgorithm,
        len: u64,
    ) -> Result<Digest, StorageError> {
        let (file, path) = (self.file.clone(), self.path.clone());
        blocking(move || {
            let mut hasher = DigestHasher::new(algorithm);
            let mut buf = vec![0u8; 1 << 20];
            let mut pos = 0u64;
            while pos < len {
                let want = buf.len().min((len - pos) as usize);
                let n = file
                    .read_at(&mut buf[..want], pos)
                    .map_err(StorageError::io("reading upload", &*path))?;
                if n == 0 {
                    return Err(StorageError::SizeMismatch {
                        id: path.display().to_string(),
                        expected: len,
                        actual: pos,
                    });
                }
                hasher.update(&buf[..n]);
                pos += n as u64;
            }
            Ok(hasher.finish())
        })
        .await
    }

    async fn commit(self: Box<Self>, digest: &Digest, size: u64) -> Result<(), StorageError> {
        let target = self.blob_root.blob_path(digest);
        let fsync = self.blob_root.fsync;
        let Self { file, path, .. } = *self;
        blocking(move || {
            let actual = file
                .metadata()
                .map_err(StorageError::io("reading upload size", &*path))?
                .len();
            if actual < size {
                return Err(StorageError::SizeMismatch {
                    id: path.display().to_string(),
                    expected: size,
                    actual,
                });
            }
            if actual > size {
                file.set_len(size)
                    .map_err(StorageError::io("truncating upload", &*path))?;
            }
            let parent = target.parent().unwrap_or(Path::new("."));
            if target.exists() {
                // The same verified content is already there.
                return fs::remove_file(&*path)
                    .map_err(StorageError::io("removing upload", &*path));
            }
            if fsync {
                file.sync_data()
                    .map_err(StorageError::io("syncing upload", &*path))?;
            }
            fs::create_dir_all(parent)
                .map_err(StorageError::io("creating blob directory", parent))?;
            // Renamed while still locked: no other writer can touch the bytes in between.
            fs::rename(&*path, &target)
                .map_err(StorageError::io("moving blob into place", &target))?;
            if fsync {
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(StorageError::io("syncing blob directory", parent))?;
            }
            drop(file);
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    async fn collect(s: ByteStream) -> Vec<u8> {
        s.try_fold(Vec::new(), |mut v, b| async move {
            v.extend_from_slice(&b);
            Ok(v)
        })
        .await
        .unwrap()
    }

    fn sha256(data: &[u8]) -> Digest {
        DigestHasher::digest_of(DigestAlgorithm::Sha256, data)
    }

    /// A sink that takes `left` bytes, then fails every write.
    struct FailingSink {
        left: usize,
    }

    impl Write for FailingSink {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = data.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn hashing_and_writing_overlap_and_a_failed_write_stops_the_sender() {
        // Everything arrives: hashed and written whole.
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let batches: Vec<Vec<Bytes>> = (0..40u8)
            .map(|i| vec![Bytes::from(vec![i; 100_000])])
            .collect();
        let all: Vec<u8> = batches.iter().flatten().flat_map(|b| b.to_vec()).collect();
        let expected = sha256(&all);
        let feed = tokio::spawn(async move {
            for b in batches {
                tx.send(b).await.unwrap();
            }
        });
        let mut sink = Vec::new();
        let (written, hasher) = task::spawn_blocking(move || {
            let done = hash_and_write(rx, UploadHasher::default(), &mut sink).unwrap();
            assert!(sink == all);
            done
        })
        .await
        .unwrap();
        feed.await.unwrap();
        assert_eq!(written, 4_000_000);
        assert_eq!(hasher.digest(), expected);

        // The disk fails part way while far more is coming than the queues hold: the error
        // comes back, and the sender's sends fail instead of waiting forever.
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let sender = tokio::spawn(async move {
            for i in 0..1000u32 {
                if tx
                    .send(vec![Bytes::from(vec![1u8; 64 << 10])])
                    .await
                    .is_err()
                {
                    return Some(i);
                }
            }
            None
        });
        // On a thread of its own, so that a hang fails the test instead of blocking the
        // runtime's shutdown.
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(hash_and_write(
                rx,
                UploadHasher::default(),
                &mut FailingSink { left: 1 << 20 },
            ));
        });
        let failed =
            task::spawn_blocking(move || outcome.recv_timeout(std::time::Duration::from_secs(20)))
                .await
                .unwrap()
                .expect("hash_and_write returns instead of waiting on a stopped writer");
        assert_eq!(failed.err().unwrap().to_string(), "disk full");
        let stopped_at = sender.await.unwrap().expect("the sender is told to stop");
        assert!(stopped_at < 1000);
    }

    #[tokio::test]
    async fn large_blob_reads_across_windows() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::open(dir.path(), false).unwrap();
        let data: Vec<u8> = (0..(READ_WINDOW as usize * 2 + 12345))
            .map(|i| (i % 253) as u8)
            .collect();
        store.start_upload("u5").await.unwrap();
        let chunks: Vec<io::Result<Bytes>> = data
            .chunks(100_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut w = store.upload_writer("u5").await.unwrap();
        let a = w
            .append(
                0,
                UploadHasher::default(),
                futures_util::stream::iter(chunks).boxed(),
            )
            .await
            .unwrap();
        let d = a.hasher.digest();
        w.commit(&d, data.len() as u64).await.unwrap();
        let all = collect(store.read(&d, 0..data.len() as u64).await.unwrap()).await;
        assert_eq!(all, data);
        let start = READ_WINDOW - 10;
        let part = collect(store.read(&d, start..start + 70_000).await.unwrap()).await;
        assert_eq!(part, &data[start as usize..start as usize + 70_000]);
        // Committing the same content again keeps one copy.
        store.start_upload("u6").await.unwrap();
        let mut w = store.upload_writer("u6").await.unwrap();
        w.append(
            0,
            UploadHasher::default(),
            futures_util::stream::iter(vec![Ok(Bytes::from(data.clone()))]).boxed(),
        )
        .await
        .unwrap();
        w.commit(&d, data.len() as u64).await.unwrap();
        assert_eq!(fs::read_dir(dir.path().join("uploads")).unwrap().count(), 0);
    }

    /// What the tree walk passes over without failing: a directory where a blob file would be,
    /// a `<2 hex>` entry that is a file, an algorithm directory Berth does not know; and a blob
    /// directory that is not there at all.
    #[tokio::test]
    async fn listing_skips_entries_that_are_not_blob_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::open(dir.path(), true).unwrap();
        let (real, fake) = (sha256(b"real"), sha256(b"a directory"));
        let blobs = dir.path().join("blobs");
        let place = |d: &Digest| blobs.join("sha256").join(&d.hex()[..2]);
        fs::create_dir_all(place(&real)).unwrap();
        fs::write(place(&real).join(real.hex()), b"real").unwrap();
        fs::create_dir_all(place(&fake).join(fake.hex())).unwrap();
        fs::write(blobs.join("sha256").join("0"), b"").unwrap();
        fs::create_dir_all(blobs.join("md5").join("ab")).unwrap();
        fs::write(blobs.join("md5").join("ab").join("abcd"), b"").unwrap();
        let page = store.list_blobs(None, 10).await.unwrap();
        let listed: Vec<_> = page.blobs.iter().map(|b| (&b.digest, b.size)).collect();
        assert_eq!(listed, [(&real, 4)]);
        assert_eq!(page.next, None);
        assert_eq!(store.stat_blob(&fake).await.unwrap(), None);
        // Deleting a "blob" that is a directory fails rather than removing a tree.
        assert!(
            store
                .delete_blobs(std::slice::from_ref(&fake))
                .await
                .is_err()
        );
        assert!(place(&fake).join(fake.hex()).is_dir());

        fs::remove_dir_all(&blobs).unwrap();
        assert_eq!(
            store.list_blobs(None, 10).await.unwrap(),
            BlobPage::default()
        );
    }
}
