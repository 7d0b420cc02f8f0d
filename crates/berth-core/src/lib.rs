//! Berth's domain model, free of I/O: what a digest, a repository name, a reference and a
//! manifest are, how they are validated, and the OCI error codes a registry answers with.
//!
//! Everything here is parsed at the edge into typed values (`"sha256:…".parse::<Digest>()`),
//! so that the rest of Berth never slices strings or handles unvalidated input.

pub mod action;
pub mod clock;
pub mod digest;
pub mod error;
pub mod hash;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod reference;

pub use action::Action;
pub use clock::{Clock, ManualClock, SystemClock};
pub use digest::{Digest, DigestAlgorithm};
pub use error::ErrorCode;
pub use hash::{DigestHasher, UploadHasher};
pub use manifest::{Descriptor, ManifestError, ParsedManifest};
pub use name::{ProjectName, RepositoryName};
pub use reference::{Reference, Tag};
