//! Streaming digests. `UploadHasher` is the running SHA-256 of an upload session; its state can
//! be saved with the session and restored on any node, so finishing an upload never has to read
//! the bytes again.

use sha2::digest::common::hazmat::{DeserializeStateError, SerializableState};
use sha2::{Digest as _, Sha256, Sha512};

use crate::digest::{Digest, DigestAlgorithm};

/// A hasher for any supported algorithm.
#[derive(Clone)]
pub enum DigestHasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Box<Sha512>),
}

impl DigestHasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Self::Sha256(Sha256::new()),
            DigestAlgorithm::Sha512 => Self::Sha512(Box::default()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        match self {
            Self::Sha256(h) => Digest::from_bytes(DigestAlgorithm::Sha256, &h.finalize()),
            Self::Sha512(h) => Digest::from_bytes(DigestAlgorithm::Sha512, &h.finalize()),
        }
    }

    /// Digest of a byte slice in one call.
    pub fn digest_of(algorithm: DigestAlgorithm, data: &[u8]) -> Digest {
        let mut h = Self::new(algorithm);
        h.update(data);
        h.finish()
    }
}

/// The running SHA-256 of an upload, resumable from its serialized state.
#[derive(Clone, Default)]
pub struct UploadHasher(Sha256);

impl UploadHasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The SHA-256 digest of everything fed so far, without consuming the hasher.
    pub fn digest(&self) -> Digest {
        Digest::from_bytes(DigestAlgorithm::Sha256, &self.0.clone().finalize())
    }

    /// The hasher's internal state, to be stored with the upload session.
    pub fn save(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    /// Restores a hasher saved by [`UploadHasher::save`]; `None` if the bytes are not a state.
    pub fn restore(state: &[u8]) -> Option<Self> {
        let array = state.try_into().ok()?;
        let restored: Result<Sha256, DeserializeStateError> = Sha256::deserialize(array);
        restored.ok().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_resumes_to_the_same_digest() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = DigestHasher::digest_of(DigestAlgorithm::Sha256, &data);
        for split in [0, 1, 63, 64, 65, 4097, 10_000] {
            let mut first = UploadHasher::default();
            first.update(&data[..split]);
            let mut resumed = UploadHasher::restore(&first.save()).unwrap();
            resumed.update(&data[split..]);
            assert_eq!(resumed.digest(), whole, "split at {split}");
        }
        assert!(UploadHasher::restore(b"nonsense").is_none());
    }
}
