//! Secret material as types.
//!
//! Rules: a credential value or key never reaches `Debug`, `Display`, an error or a log.
//! [`SecretValue`] wraps [`secrecy::SecretString`] (redacted `Debug`, zeroed on drop, no
//! `Clone`); the only way to the text is [`SecretValue::expose`], so every place that
//! handles plaintext is easy to find with grep.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// A credential value: a key, a password, or a repository URL (not secret, but handled the
/// same way so that no code path has to decide).
pub struct SecretValue(SecretString);

impl SecretValue {
    pub fn new(value: String) -> Self {
        SecretValue(SecretString::from(value))
    }

    /// The plaintext. Call it only to check, seal, mask or hand the value to its consumer.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Compares two values in constant time (for a typed-twice prompt).
    pub fn ct_eq(&self, other: &SecretValue) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let v = SecretValue::new("hunter2-very-secret".into());
        assert!(!format!("{v:?}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&v)).contains("hunter2"));
    }

    #[test]
    fn constant_time_compare() {
        let a = SecretValue::new("abc".into());
        assert!(a.ct_eq(&SecretValue::new("abc".into())));
        assert!(!a.ct_eq(&SecretValue::new("abd".into())));
        assert!(!a.ct_eq(&SecretValue::new("abcd".into())));
    }
}
