//! Writing an upload's bytes with `O_DIRECT` where the filesystem allows it.
//!
//! A buffered write copies every byte into the page cache and the commit's `fsync` then writes
//! it back; for a pushed layer that copy is the largest CPU cost after hashing (profiled:
//! `copy_folio_from_iter_atomic`). Direct writes go from an aligned buffer to the device, and
//! leave the final `fsync` little to do. Offsets and lengths must be multiples of the block
//! size, so the writer keeps whole 4 KiB blocks: an append that starts inside a block first
//! reads that block's head back, and the last partial block is written through the page cache
//! (the kernel keeps the two coherent: a direct write flushes and drops cached pages it
//! overlaps). Filesystems that refuse `O_DIRECT` (tmpfs, some FUSE mounts) get buffered
//! writes, as do writes after a direct write fails with `EINVAL`. Without direct writes
//! (the default: a blob pulled soon after its push is then served from memory), the same
//! writer batches writes into 1 MiB `pwrite`s through the page cache and starts writeback of
//! every 8 MiB as soon as it is written (`sync_file_range`), so the commit's fsync finds little
//! left to do.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of direct I/O offsets, lengths and buffers (covers 512 B and 4 KiB sectors).
const BLOCK: usize = 4096;
/// Bytes gathered before one direct write.
const BUFFER: usize = 1 << 20;

/// Writes a file from `offset` on, directly when it can, through the page cache otherwise.
pub(crate) struct UploadFileWriter<'a> {
    buffered: &'a File,
    direct: Option<File>,
    /// Backing store of `buf`, over-allocated so that an aligned window fits.
    storage: Vec<u8>,
    /// Where the aligned window starts in `storage`.
    align: usize,
    /// Bytes of the window in use.
    fill: usize,
    /// File offset of the window's first byte (a multiple of `BLOCK` in direct mode).
    start: u64,
    /// Where writeback was last started (buffered mode).
    written_back: u64,
}

/// Buffered mode starts writeback of each this many bytes as soon as they are written
/// (write-behind), so dirty pages do not pile up for the commit's fsync.
const WRITE_BEHIND: u64 = 8 << 20;

/// Starts writeback of `len` bytes of `file` at `offset` without waiting for it.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open for the
    // duration of the call (borrowed from `file`).
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

impl<'a> UploadFileWriter<'a> {
    /// A writer appending at `offset` to `file` (opened at `path`); with `direct`, through
    /// `O_DIRECT` if the filesystem takes it.
    pub(crate) fn new(file: &'a File, path: &Path, offset: u64, direct: bool) -> io::Result<Self> {
        let direct = direct
            .then(|| {
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(path)
                    .ok()
            })
            .flatten();
        let storage = vec![0u8; BUFFER + BLOCK];
        let align = (BLOCK - storage.as_ptr() as usize % BLOCK) % BLOCK;
        let mut w = Self {
            buffered: file,
            direct,
            storage,
            align,
            fill: 0,
            start: offset,
            written_back: offset,
        };
        if w.direct.is_some() {
            // Start at the block boundary, with the block's head as it is in the file.
            let head = (offset % BLOCK as u64) as usize;
            w.start = offset - head as u64;
            if head > 0 {
                let window = &mut w.storage[align..align + head];
                file.read_exact_at(window, w.start)?;
                w.fill = head;
            }
        }
        Ok(w)
    }

    fn window(&self) -> &[u8] {
        &self.storage[self.align..self.align + self.fill]
    }

    /// Writes the first `len` bytes of the window (a multiple of `BLOCK` when direct) and
    /// moves the rest to its front.
    fn drain(&mut self, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let mut written = false;
        if let Some(direct) = &self.direct {
            match direct.write_all_at(&self.storage[self.align..self.align + len], self.start) {
                Ok(()) => written = true,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!(error = %e, "direct write refused: writing through the page cache");
                    self.direct = None;
                }
                Err(e) => return Err(e),
            }
        }
        if !written {
            self.buffered
                .write_all_at(&self.storage[self.align..self.align + len], self.start)?;
        }
        self.start += len as u64;
        if !written && self.start - self.written_back >= WRITE_BEHIND {
            start_writeback(
                self.buffered,
                self.written_back,
                self.start - self.written_back,
            );
            self.written_back = self.start;
        }
        self.storage
            .copy_within(self.align + len..self.align + self.fill, self.align);
        self.fill -= len;
        Ok(())
    }

    /// Writes what remains: whole blocks directly, the partial last block through the page
    /// cache.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        let whole = if self.direct.is_some() {
            self.fill - self.fill % BLOCK
        } else {
            self.fill
        };
        self.drain(whole)?;
        if self.fill > 0 {
            self.buffered.write_all_at(self.window(), self.start)?;
        }
        Ok(())
    }
}

impl Write for UploadFileWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BUFFER - self.fill);
        let at = self.align + self.fill;
        self.storage[at..at + n].copy_from_slice(&data[..n]);
        self.fill += n;
        if self.fill == BUFFER {
            self.drain(BUFFER)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty file in a new directory (kept alive by the first element).
    fn scratch() -> (tempfile::TempDir, std::path::PathBuf, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        (dir, path, file)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4099) as u8).collect()
    }

    /// Appends of every alignment, resumed at every kind of offset, read back whole.
    #[test]
    fn appends_at_any_offset_read_back_whole() {
        let (_dir, path, file) = scratch();
        let all = data(3 * BUFFER + 12_345);
        let cuts = [
            0,
            1,
            4095,
            4096,
            4097,
            100_000,
            BUFFER,
            BUFFER + 5,
            all.len(),
        ];
        for (i, pair) in cuts.windows(2).enumerate() {
            let (from, to) = (pair[0], pair[1]);
            // Direct and buffered appends alternate over the same file.
            let mut w = UploadFileWriter::new(&file, &path, from as u64, i % 3 != 2).unwrap();
            // Small and odd writes.
            for piece in all[from..to].chunks(7919) {
                w.write_all(piece).unwrap();
            }
            w.finish().unwrap();
            let mut back = vec![0u8; to];
            file.read_exact_at(&mut back, 0).unwrap();
            assert!(back == all[..to], "after appending {from}..{to}");
        }
        assert_eq!(file.metadata().unwrap().len(), all.len() as u64);
    }

    /// Buffered appends longer than the write-behind step start writeback as they go and
    /// still read back whole.
    #[test]
    fn buffered_appends_write_behind() {
        let (_dir, path, file) = scratch();
        let all = data(2 * WRITE_BEHIND as usize + 777);
        let mut w = UploadFileWriter::new(&file, &path, 0, false).unwrap();
        for piece in all.chunks(65_521) {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.written_back, 2 * WRITE_BEHIND, "writeback started twice");
        w.finish().unwrap();
        let mut back = vec![0u8; all.len()];
        file.read_exact_at(&mut back, 0).unwrap();
        assert!(back == all);
    }
}
