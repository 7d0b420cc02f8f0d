//! Token signing keys: ECDSA P-256 (ES256) key pairs with a self-signed certificate.
//!
//! Tokens carry the key's id in `kid`, in libtrust's format (what CNCF Distribution 2.x indexes
//! trusted keys by), and the certificate in `x5c`, so that Distribution configured with the
//! certificate as its `rootcertbundle` accepts them (2.x and 3.x alike). `jwk()` gives the public
//! key for a JWKS document.

use berth_core::Clock;

use data_encoding::{BASE32_NOPAD, BASE64, BASE64URL_NOPAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Why key material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The private key is not a PKCS#8 PEM ECDSA P-256 key.
    #[error("invalid signing key: {0}")]
    InvalidKey(String),
    /// The certificate is not a PEM certificate for the signing key.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
}

/// A token signing key with its certificate.
pub struct SigningKey {
    kid: String,
    private_pem: String,
    cert_pem: String,
    cert_der_base64: String,
    public_pem: String,
    public_raw: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The libtrust key id of a public key: SHA-256 of its DER SubjectPublicKeyInfo, the first 240
/// bits in base32, as 12 groups of 4 characters joined by `:`.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let hash = Sha256::digest(spki_der);
    let encoded = BASE32_NOPAD.encode(&hash[..30]);
    encoded
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":")
}

fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or(format!("no {label} block"))? + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or(format!("unterminated {label} block"))?
        + start;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    BASE64.decode(body.as_bytes()).map_err(|e| e.to_string())
}

fn current_year() -> i32 {
    let secs = berth_core::SystemClock.unix_seconds().max(0);
    1970 + (secs / 31_556_952) as i32
}

impl SigningKey {
    /// Generates a new key and a self-signed certificate for it, valid for 20 years.
    pub fn generate(common_name: &str) -> Result<Self, KeyError> {
        let pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| KeyError::InvalidKey(e.to_string()))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| KeyError::InvalidCertificate(e.to_string()))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        let year = current_year();
        params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
        params.not_after = rcgen::date_time_ymd(year + 20, 1, 1);
        let cert = params
            .self_signed(&pair)
            .map_err(|e| KeyError::InvalidCertificate(e.to_string()))?;
        Self::from_pem(&pair.serialize_pem(), &cert.pem())
    }

    /// Loads a key (PKCS#8 PEM, ECDSA P-256) and its certificate (PEM).
    pub fn from_pem(private_pem: &str, cert_pem: &str) -> Result<Self, KeyError> {
        let pair =
            KeyPair::from_pem(private_pem).map_err(|e| KeyError::InvalidKey(e.to_string()))?;
        if !pair.is_compatible(&PKCS_ECDSA_P256_SHA256) {
            return Err(KeyError::InvalidKey("expected an ECDSA P-256 key".into()));
        }
        let cert_der = pem_body(cert_pem, "CERTIFICATE").map_err(KeyError::InvalidCertificate)?;
        let spki = pair.subject_public_key_info();
        // The certificate must hold this key: its DER contains the key's SubjectPublicKeyInfo.
        if !cert_der.windows(spki.len()).any(|w| w == spki.as_slice()) {
            return Err(KeyError::InvalidCertificate(
                "the certificate is not for this key".into(),
            ));
        }
        let public_pem = pair.public_key_pem();
        Ok(Self {
            kid: libtrust_key_id(&spki),
            encoding: EncodingKey::from_ec_pem(private_pem.as_bytes())
                .map_err(|e| KeyError::InvalidKey(e.to_string()))?,
            decoding: DecodingKey::from_ec_pem(public_pem.as_bytes())
                .map_err(|e| KeyError::InvalidKey(e.to_string()))?,
            private_pem: private_pem.to_owned(),
            cert_pem: cert_pem.to_owned(),
            cert_der_base64: BASE64.encode(&cert_der),
            public_pem,
            public_raw: pair.public_key_raw().to_vec(),
        })
    }

    /// The key id (libtrust format).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key, PKCS#8 PEM. Secret: store it like a password.
    pub fn private_pem(&self) -> &str {
        &self.private_pem
    }

    /// The certificate, PEM: what a verifier (e.g. Distribution's `rootcertbundle`) trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The public key, SPKI PEM.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public key as a JWK (for a JWKS document).
    pub fn jwk(&self) -> Value {
        // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
        let (x, y) = self.public_raw[1..].split_at(32);
        json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": BASE64URL_NOPAD.encode(x), "y": BASE64URL_NOPAD.encode(y),
            "x5c": [self.cert_der_base64],
        })
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    pub(crate) fn x5c(&self) -> Vec<String> {
        vec![self.cert_der_base64.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtrust_key_id_format() {
        let id = libtrust_key_id(b"any bytes");
        assert_eq!(id.len(), 12 * 4 + 11);
        assert_eq!(id.split(':').count(), 12);
        assert!(
            id.chars()
                .all(|c| c == ':' || c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        );
    }

    #[test]
    fn generate_and_reload() {
        let key = SigningKey::generate("test signer").unwrap();
        let again = SigningKey::from_pem(key.private_pem(), key.cert_pem()).unwrap();
        assert_eq!(key.kid(), again.kid());
        assert!(key.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(format!("{key:?}").contains(key.kid()));
        assert!(!format!("{key:?}").contains("PRIVATE"));
        let jwk = key.jwk();
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(
            BASE64URL_NOPAD
                .decode(jwk["x"].as_str().unwrap().as_bytes())
                .unwrap()
                .len(),
            32
        );
    }

    #[test]
    fn mismatched_or_broken_material_is_refused() {
        let a = SigningKey::generate("a").unwrap();
        let b = SigningKey::generate("b").unwrap();
        assert!(matches!(
            SigningKey::from_pem(a.private_pem(), b.cert_pem()),
            Err(KeyError::InvalidCertificate(_))
        ));
        assert!(matches!(
            SigningKey::from_pem("not a key", a.cert_pem()),
            Err(KeyError::InvalidKey(_))
        ));
        assert!(matches!(
            SigningKey::from_pem(a.private_pem(), "not a cert"),
            Err(KeyError::InvalidCertificate(_))
        ));
    }
}
