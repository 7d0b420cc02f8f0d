//! Content digests: `algorithm:encoded`, as defined by the OCI image specification.

use std::fmt;
use std::str::FromStr;

/// A digest algorithm Berth can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// SHA-256, the canonical algorithm (64 lowercase hex characters).
    Sha256,
    /// SHA-512 (128 lowercase hex characters).
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's name as it appears before the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Length of the hex-encoded digest value.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// A validated digest such as `sha256:6c3c…`. The string form is canonical and is what the
/// metadata store and blob store key on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    text: String,
    algorithm: DigestAlgorithm,
}

/// Why a string is not a digest Berth accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not of the form `algorithm:encoded` with the grammar of the image spec.
    #[error("invalid digest {0:?}: expected algorithm:hex, e.g. sha256:<64 hex characters>")]
    Malformed(String),
    /// Well-formed, but an algorithm Berth does not verify.
    #[error("unsupported digest algorithm {0:?}: sha256 and sha512 are supported")]
    UnsupportedAlgorithm(String),
    /// The right algorithm, but the encoded part has the wrong length or characters.
    #[error("invalid {algorithm} digest {text:?}: expected {len} lowercase hex characters")]
    BadEncoding {
        /// The algorithm named.
        algorithm: &'static str,
        /// The offending digest.
        text: String,
        /// The expected length.
        len: usize,
    },
}

impl Digest {
    /// The algorithm part.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The hex-encoded part after the colon.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm().as_str().len() + 1..]
    }

    /// The whole digest as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Builds a digest from an algorithm and raw hash bytes.
    pub fn from_bytes(algorithm: DigestAlgorithm, hash: &[u8]) -> Self {
        Self {
            text: format!("{}:{}", algorithm.as_str(), hex::encode(hash)),
            algorithm,
        }
    }
}

fn is_algorithm_component(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || DigestError::Malformed(s.to_owned());
        let (algorithm, encoded) = s.split_once(':').ok_or_else(malformed)?;
        // algorithm ::= component ([+._-] component)*
        if !algorithm
            .split(['+', '.', '_', '-'])
            .all(is_algorithm_component)
        {
            return Err(malformed());
        }
        // encoded ::= [a-zA-Z0-9=_-]+
        if encoded.is_empty()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(malformed());
        }
        let alg = match algorithm {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            other => return Err(DigestError::UnsupportedAlgorithm(other.to_owned())),
        };
        if encoded.len() != alg.hex_len()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::BadEncoding {
                algorithm: alg.as_str(),
                text: s.to_owned(),
                len: alg.hex_len(),
            });
        }
        Ok(Self {
            text: s.to_owned(),
            algorithm: alg,
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_sha256_and_sha512() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.to_string(), EMPTY);
        let s512 = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(
            s512.parse::<Digest>().unwrap().algorithm(),
            DigestAlgorithm::Sha512
        );
    }

    #[test]
    fn rejects_malformed_and_unsupported() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "SHA256:abc",
            "sha256:totallywrong",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            "md5:abcdef".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }
}
