//! Password hashing: argon2id with OWASP's recommended parameters, in PHC string format.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Longest password accepted: hashing cost must not be the attacker's to choose.
pub const MAX_PASSWORD_LEN: usize = 256;

fn argon2() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane (OWASP password storage cheat sheet).
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password cannot be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Empty or longer than [`MAX_PASSWORD_LEN`].
    #[error("a password must have 1 to {MAX_PASSWORD_LEN} bytes")]
    Length,
    /// The hasher failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// 32 bytes from the OS generator (what v4 UUIDs are made of): 244 random bits. For salts,
/// keys and session ids.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
}

/// Hashes a password for storage.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::Length);
    }
    let salt =
        SaltString::encode_b64(&random_bytes()).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks a password against a stored hash. False for a wrong password, an overlong one, or a
/// hash that cannot be parsed.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    PasswordHash::new(stored)
        .is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// Why a new password is refused: Harbor's policy (8 to 128 characters, with an upper-case
/// letter, a lower-case letter and a digit), so that scripts written for Harbor keep working.
pub fn check_strength(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(format!("a password must have 8 to 128 characters, not {n}"));
    }
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    if !(has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit))
    {
        return Err(
            "a password needs at least one upper-case letter, one lower-case letter and one digit"
                .into(),
        );
    }
    Ok(())
}

/// A new random secret (robot accounts): 32 letters and digits from the OS generator
/// (about 190 bits), meeting [`check_strength`].
pub fn generate_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    loop {
        let mut secret = String::with_capacity(32);
        while secret.len() < 32 {
            for b in uuid::Uuid::new_v4().into_bytes() {
                // Rejection sampling: 248 = 4 × 62 keeps every character equally likely.
                if b < 248 && secret.len() < 32 {
                    secret.push(char::from(ALPHABET[usize::from(b % 62)]));
                }
            }
        }
        if check_strength(&secret).is_ok() {
            return secret;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(hash("correct horse").unwrap(), h, "salted");
        assert!(matches!(hash(""), Err(PasswordError::Length)));
        assert!(matches!(
            hash(&"x".repeat(MAX_PASSWORD_LEN + 1)),
            Err(PasswordError::Length)
        ));
        assert!(!verify(&"x".repeat(10_000), &h));
    }

    #[test]
    fn strength_and_generated_secrets() {
        assert!(check_strength("Passw0rd").is_ok());
        for weak in [
            "Pa0",
            "password1",
            "PASSWORD1",
            "Password",
            &format!("Aa1{}", "x".repeat(126)),
        ] {
            assert!(check_strength(weak).is_err(), "{weak}");
        }
        let a = generate_secret();
        assert_eq!(a.len(), 32);
        assert!(check_strength(&a).is_ok());
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(generate_secret(), a);
    }
}
