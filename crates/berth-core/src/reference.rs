//! Manifest references: a tag or a digest.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// A validated tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

/// Why a string is not a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tag {0:?}: tags are 1 to 128 of [A-Za-z0-9_.-] and do not start with '.' or '-'")]
pub struct TagError(pub String);

impl Tag {
    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = TagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TagError(s.to_owned()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a manifest URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag, e.g. `latest`.
    Tag(Tag),
    /// A digest, e.g. `sha256:…`.
    Digest(Digest),
}

/// Why a string is not a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// It looks like a digest (has a colon) but is not a valid one.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// It is not a valid tag.
    #[error(transparent)]
    Tag(#[from] TagError),
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Tags cannot contain ':', digests always do.
        if s.contains(':') {
            Ok(Self::Digest(s.parse()?))
        } else {
            Ok(Self::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests() {
        assert!(matches!("latest".parse(), Ok(Reference::Tag(_))));
        assert!(matches!("_v1.0-rc.1".parse(), Ok(Reference::Tag(_))));
        assert!(matches!("x".repeat(128).parse(), Ok(Reference::Tag(_))));
        assert!(matches!(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse(),
            Ok(Reference::Digest(_))
        ));
        for bad in [".INVALID_MANIFEST_NAME", "-x", "", "a/b", "a+b", "é"] {
            assert!(matches!(
                bad.parse::<Reference>(),
                Err(ReferenceError::Tag(_))
            ));
        }
        assert!("x".repeat(129).parse::<Reference>().is_err());
        assert!(matches!(
            "sha256:totallywrong".parse::<Reference>(),
            Err(ReferenceError::Digest(_))
        ));
    }
}
