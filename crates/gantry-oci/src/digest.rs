//! Content digests: parsed strictly, computed incrementally, compared exactly.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A content digest such as `sha256:<64 hex>`: algorithm and lowercase hex, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestError {
    pub input: String,
    pub reason: &'static str,
}

impl Digest {
    /// The digest of `bytes` with SHA-256.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The lower-case hex after the algorithm.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }

    /// `<algorithm>:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The referrers fallback tag: `sha256-<hex>`.
    pub fn fallback_tag(&self) -> String {
        format!("{}-{}", self.algorithm(), self.hex())
    }

    /// The digest of `bytes` with this digest's algorithm, to compare with it.
    #[must_use]
    pub fn hash_like(&self, bytes: &[u8]) -> Self {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finish()
    }

    /// A hasher of the same algorithm, to check a body against this digest as it streams.
    pub fn hasher(&self) -> Hasher {
        match self.algorithm() {
            "sha512" => Hasher::Sha512(Sha512::new()),
            _ => Hasher::Sha256(Sha256::new()),
        }
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| DigestError {
            input: input.to_owned(),
            reason,
        };
        let (algorithm, hex) = input
            .split_once(':')
            .ok_or_else(|| err("expected <algorithm>:<hex>"))?;
        let length = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(err("unsupported algorithm (expected sha256 or sha512)")),
        };
        if hex.len() != length {
            return Err(err("wrong length for the algorithm"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("expected lowercase hex digits"));
        }
        Ok(Self(input.to_owned()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher for one algorithm.
pub enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Sha512),
}

impl Hasher {
    /// Hashes `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> Digest {
        match self {
            Self::Sha256(h) => Digest(format!("sha256:{}", hex::encode(h.finalize()))),
            Self::Sha512(h) => Digest(format!("sha512:{}", hex::encode(h.finalize()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_and_parse_round_trip() {
        let d = Digest::sha256(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.as_str().parse::<Digest>(), Ok(d.clone()));
        assert_eq!(
            d.fallback_tag(),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = d.hasher();
        h.update(b"");
        assert_eq!(h.finish(), d);
    }

    #[test]
    fn rejects_malformed_digests() {
        for bad in [
            "sha256",
            "md5:abcd",
            "sha256:abc",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
        assert!(
            format!("sha512:{}", "a".repeat(128))
                .parse::<Digest>()
                .is_ok()
        );
    }
}
