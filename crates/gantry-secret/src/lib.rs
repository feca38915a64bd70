//! A string that never prints itself.
//!
//! Tokens, passwords and keys travel through gantry as [`Secret`]: its `Debug` and `Display` print
//! `<redacted>`, so a `{:?}` of any struct holding one is safe to log. The runner-contract crate
//! additionally masks secret inputs with `::add-mask::`.

#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

/// A secret value (a token, a password, a key). `Debug` and `Display` print `<redacted>`; the value
/// is reached only through [`Secret::expose`], so every use of it is visible in review.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself: every use is a place that handles the secret.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        #[derive(Debug)]
        #[expect(dead_code, reason = "only read through Debug")]
        struct Creds {
            user: String,
            token: Secret,
        }
        let creds = Creds {
            user: "octo".into(),
            token: Secret::new("ghp_s3cr3t"),
        };
        let shown = format!("{creds:?} {} {:#?}", creds.token, creds);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(creds.token.expose(), "ghp_s3cr3t");
    }
}
