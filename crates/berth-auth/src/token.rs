//! Registry tokens: JWTs in the Docker registry token format.
//!
//! Claims are `iss, sub, aud, exp, nbf, iat, jti` and `access: [{type, name, actions}]`. Tokens
//! are signed ES256 with the key's libtrust `kid` and its certificate in `x5c`. Verification
//! accepts only ES256 with a known key, checks issuer and audience, and allows 60 s of clock
//! skew, as Distribution does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_core::Clock;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::SigningKey;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Access to one resource, as granted in a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Resource name, e.g. `team/app` or `catalog`.
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

/// The claims of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the account name, empty for anonymous.
    pub sub: String,
    /// Audience: the registry service.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Not before (Unix seconds).
    pub nbf: u64,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Unique token id.
    pub jti: String,
    /// Granted access.
    #[serde(default)]
    pub access: Vec<Access>,
}

impl Claims {
    /// Whether the token grants `action` on the resource (`*` grants every action).
    pub fn allows(&self, resource_type: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.resource_type == resource_type
                && a.name == name
                && a.actions.iter().any(|x| x == action || x == "*")
        })
    }
}

/// The claims of a refresh token (OAuth2 `refresh_token` grant, `offline_token=true`).
///
/// Its audience is the service name with `#refresh` appended, so it is never accepted as an
/// access token; `pwd` fingerprints the user's stored password hash, so that a password change
/// revokes every refresh token issued before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// Issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// `<service>#refresh`.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Not before (Unix seconds).
    pub nbf: u64,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Unique id.
    pub jti: String,
    /// Fingerprint of the password hash the user had when the token was issued.
    pub pwd: String,
}

/// The audience of refresh tokens for `service`.
pub fn refresh_audience(service: &str) -> String {
    format!("{service}#refresh")
}

/// A token ready for the token endpoint's response.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Issue time (Unix seconds).
    pub issued_at: u64,
}

fn now_secs() -> u64 {
    u64::try_from(berth_core::SystemClock.unix_seconds()).unwrap_or(0)
}

/// Signs tokens with the active key.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    key: Arc<SigningKey>,
    issuer: String,
    service: String,
    lifetime: Duration,
}

impl TokenIssuer {
    /// An issuer named `issuer`, for the registry service `service` (the token's audience).
    pub fn new(key: Arc<SigningKey>, issuer: &str, service: &str, lifetime: Duration) -> Self {
        Self {
            key,
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            lifetime,
        }
    }

    /// Issues a refresh token for `subject`, valid for `lifetime`, bound to `pwd`.
    pub fn issue_refresh(
        &self,
        subject: &str,
        pwd: &str,
        lifetime: Duration,
    ) -> Result<String, TokenError> {
        let now = now_secs();
        let claims = RefreshClaims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: refresh_audience(&self.service),
            exp: now + lifetime.as_secs(),
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            pwd: pwd.to_owned(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, self.key.encoding_key())
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Issues a token for `subject` with `access`, valid for the issuer's lifetime.
    pub fn issue(&self, subject: &str, access: Vec<Access>) -> Result<IssuedToken, TokenError> {
        self.issue_for(subject, access, self.lifetime)
    }

    /// Issues a token for `subject` with `access`, valid for `lifetime` (the setting as it
    /// applies now).
    pub fn issue_for(
        &self,
        subject: &str,
        access: Vec<Access>,
        lifetime: Duration,
    ) -> Result<IssuedToken, TokenError> {
        let now = now_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: self.service.clone(),
            exp: now + lifetime.as_secs(),
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key.kid().to_owned());
        header.x5c = Some(self.key.x5c());
        let token = jsonwebtoken::encode(&header, &claims, self.key.encoding_key())
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        Ok(IssuedToken {
            token,
            expires_in: lifetime.as_secs(),
            issued_at: now,
        })
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or not one of ours in shape.
    #[error("malformed token")]
    Malformed,
    /// Signed with an algorithm other than ES256 (`none`, HS256, …).
    #[error("token algorithm not accepted")]
    Algorithm,
    /// Signed by a key this registry does not know.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify (altered token).
    #[error("token signature invalid")]
    Signature,
    /// Past its expiry (with leeway).
    #[error("token expired")]
    Expired,
    /// Before its `nbf` (with leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// For another service.
    #[error("token audience is not this registry")]
    Audience,
    /// From another issuer.
    #[error("token issuer not trusted")]
    Issuer,
    /// Signing failed (issuer side).
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// Verifies tokens against a set of trusted keys (the active key and those still in rotation).
#[derive(Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, Arc<SigningKey>>,
    validation: Validation,
}

impl TokenVerifier {
    /// A verifier for tokens of `issuer` addressed to `service`, signed by one of `keys`.
    pub fn new(
        keys: impl IntoIterator<Item = Arc<SigningKey>>,
        issuer: &str,
        service: &str,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[service]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Self {
            keys: keys.into_iter().map(|k| (k.kid().to_owned(), k)).collect(),
            validation,
        }
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_as(token, &self.validation)
    }

    /// Verifies a refresh token (audience `<service>#refresh`).
    pub fn verify_refresh(&self, token: &str, service: &str) -> Result<RefreshClaims, TokenError> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[refresh_audience(service)]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        self.verify_as(token, &validation)
    }

    fn verify_as<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<T, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Algorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::decode::<T>(token, key.decoding_key(), validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::Signature,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidAudience => TokenError::Audience,
                ErrorKind::InvalidIssuer => TokenError::Issuer,
                ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
                _ => TokenError::Malformed,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::BASE64URL_NOPAD;

    fn setup() -> (Arc<SigningKey>, TokenIssuer, TokenVerifier) {
        let key = Arc::new(SigningKey::generate("test").unwrap());
        let issuer = TokenIssuer::new(
            key.clone(),
            "berth-token-issuer",
            "berth-registry",
            Duration::from_secs(1800),
        );
        let verifier = TokenVerifier::new([key.clone()], "berth-token-issuer", "berth-registry");
        (key, issuer, verifier)
    }

    fn pull_push(name: &str) -> Vec<Access> {
        vec![Access {
            resource_type: "repository".into(),
            name: name.into(),
            actions: vec!["pull".into(), "push".into()],
        }]
    }

    fn b64(v: &serde_json::Value) -> String {
        BASE64URL_NOPAD.encode(v.to_string().as_bytes())
    }

    /// Re-signs `claims` with the test key and a chosen header.
    fn forge(key: &SigningKey, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid().to_owned());
        jsonwebtoken::encode(&header, claims, key.encoding_key()).unwrap()
    }

    #[test]
    fn issued_tokens_verify_and_carry_their_access() {
        let (key, issuer, verifier) = setup();
        let t = issuer.issue("alice", pull_push("team/app")).unwrap();
        assert_eq!(t.expires_in, 1800);
        let header = jsonwebtoken::decode_header(&t.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.x5c.unwrap().len(), 1);
        let claims = verifier.verify(&t.token).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.aud.as_str(),
                claims.iss.as_str()
            ),
            ("alice", "berth-registry", "berth-token-issuer")
        );
        assert_eq!(claims.exp - claims.iat, 1800);
        assert_eq!(claims.jti.len(), 32);
        assert!(claims.allows("repository", "team/app", "push"));
        // A token for one repository says nothing about another.
        assert!(!claims.allows("repository", "team/other", "pull"));
        assert!(!claims.allows("repository", "team/app", "delete"));
        assert!(!claims.allows("registry", "catalog", "*"));
    }

    #[test]
    fn forged_and_stale_tokens_are_refused() {
        let (key, issuer, verifier) = setup();
        let good = issuer.issue("alice", pull_push("team/app")).unwrap().token;
        let parts: Vec<&str> = good.split('.').collect();
        let claims: serde_json::Value =
            serde_json::from_slice(&BASE64URL_NOPAD.decode(parts[1].as_bytes()).unwrap()).unwrap();

        // alg: none, no signature.
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": key.kid()})),
            parts[1]
        );
        assert!(matches!(
            verifier.verify(&none),
            Err(TokenError::Malformed | TokenError::Algorithm)
        ));
        // HS256 "signed" with the public key as the HMAC secret.
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some(key.kid().to_owned());
        let hs256 = jsonwebtoken::encode(
            &hs,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key.public_pem().as_bytes()),
        )
        .unwrap();
        assert_eq!(verifier.verify(&hs256), Err(TokenError::Algorithm));
        // Access claims altered after signing.
        let mut widened = claims.clone();
        widened["access"][0]["name"] = "team/other".into();
        let tampered = format!("{}.{}.{}", parts[0], b64(&widened), parts[2]);
        assert_eq!(verifier.verify(&tampered), Err(TokenError::Signature));
        // Another key, unknown here.
        let stranger = SigningKey::generate("stranger").unwrap();
        assert_eq!(
            verifier.verify(&forge(&stranger, &claims)),
            Err(TokenError::UnknownKey)
        );
        // Times: expired and not yet valid beyond the leeway; within the leeway is fine.
        let now = now_secs();
        let with = |field: &str, value: u64| {
            let mut c = claims.clone();
            c[field] = value.into();
            forge(&key, &c)
        };
        assert_eq!(
            verifier.verify(&with("exp", now - 120)),
            Err(TokenError::Expired)
        );
        assert!(verifier.verify(&with("exp", now - 30)).is_ok());
        assert_eq!(
            verifier.verify(&with("nbf", now + 120)),
            Err(TokenError::NotYetValid)
        );
        assert!(verifier.verify(&with("nbf", now + 30)).is_ok());
        // Audience and issuer.
        let mut aud = claims.clone();
        aud["aud"] = "another-registry".into();
        assert_eq!(
            verifier.verify(&forge(&key, &aud)),
            Err(TokenError::Audience)
        );
        let mut iss = claims.clone();
        iss["iss"] = "someone-else".into();
        assert_eq!(verifier.verify(&forge(&key, &iss)), Err(TokenError::Issuer));
        // Garbage.
        for junk in ["", "abc", "a.b.c", "....", &"x".repeat(10_000)] {
            assert!(verifier.verify(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn refresh_tokens_are_not_access_tokens() {
        let (_, issuer, verifier) = setup();
        let refresh = issuer
            .issue_refresh("alice", "fp", Duration::from_secs(3600))
            .unwrap();
        let claims = verifier.verify_refresh(&refresh, "berth-registry").unwrap();
        assert_eq!((claims.sub.as_str(), claims.pwd.as_str()), ("alice", "fp"));
        assert_eq!(verifier.verify(&refresh), Err(TokenError::Audience));
        let access = issuer.issue("alice", vec![]).unwrap().token;
        assert!(verifier.verify_refresh(&access, "berth-registry").is_err());
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let (old, old_issuer, _) = setup();
        let new = Arc::new(SigningKey::generate("new").unwrap());
        let verifier =
            TokenVerifier::new([old, new.clone()], "berth-token-issuer", "berth-registry");
        let new_issuer = TokenIssuer::new(
            new,
            "berth-token-issuer",
            "berth-registry",
            Duration::from_secs(60),
        );
        assert!(
            verifier
                .verify(&old_issuer.issue("a", vec![]).unwrap().token)
                .is_ok()
        );
        assert!(
            verifier
                .verify(&new_issuer.issue("a", vec![]).unwrap().token)
                .is_ok()
        );
    }
}
