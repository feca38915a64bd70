//! Image references: `[registry/]repository[:tag][@digest]`, parsed by the distribution grammar
//! and normalised the way docker does (`alpine` is `docker.io/library/alpine:latest`).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry name docker uses when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[expect(
    missing_docs,
    reason = "each variant's #[error] message is its documentation"
)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

fn is_path_component(part: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
    let bytes = part.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Whether `tag` is a valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_registry(part: &str) -> bool {
    part.contains('.') || part.contains(':') || part == "localhost" || part.starts_with('[')
}

impl Reference {
    /// The registry as written (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to send API requests to (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository (`library/alpine`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes in a manifest URL: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The same repository at `digest`, without a tag.
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository at `tag`, without a digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError {
                input: tag.to_owned(),
                reason: "a tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}".to_owned(),
            });
        }
        Ok(Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// Another repository of the same registry.
    pub fn in_repository(&self, repository: &str) -> Result<Self, ReferenceError> {
        format!("{}/{repository}", self.registry)
            .parse::<Self>()
            .map(|r| Self {
                tag: None,
                digest: None,
                ..r
            })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ReferenceError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(err("it is empty"));
        }
        if input.trim() != input || input.contains(char::is_whitespace) {
            return Err(err("it contains white space"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(digest.parse::<Digest>().map_err(|e| err(&format!("{e}")))?),
            ),
            None => (input, None),
        };
        // A tag is after the last ':' that follows the last '/' (a registry port has a '/' after it).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(err(&format!(
                "tag {tag:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
            )));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if is_registry(first) => (first.to_owned(), path.to_owned()),
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_owned()
        } else {
            registry
        };
        if registry.is_empty() {
            return Err(err("the registry is empty"));
        }
        let path = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.is_empty() {
            return Err(err("the repository is empty"));
        }
        if let Some(bad) = path.split('/').find(|part| !is_path_component(part)) {
            return Err(err(&format!(
                "repository component {bad:?} must be lowercase letters and digits joined by '.', '_', '__' or '-'"
            )));
        }
        if registry.len() + 1 + path.len() > 255 {
            return Err(err("the name is longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Self {
            registry,
            repository: path,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parse(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(
            parse("alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(parse("alpine").api_host(), "registry-1.docker.io");
        assert_eq!(
            parse("bitnami/redis:7").to_string(),
            "docker.io/bitnami/redis:7"
        );
        assert_eq!(
            parse("index.docker.io/library/alpine").registry(),
            "docker.io"
        );
    }

    #[test]
    fn registries_ports_tags_and_digests() {
        let r = parse("127.0.0.1:5000/team/app:v1.2");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "team/app", Some("v1.2"))
        );
        let r = parse(&format!("ghcr.io/acme/billing:prod@{D}"));
        assert_eq!(r.tag(), Some("prod"));
        assert_eq!(r.digest().map(Digest::as_str), Some(D));
        assert_eq!(r.manifest_reference(), D, "the digest wins over the tag");
        let r = parse(&format!("localhost:5000/app@{D}"));
        assert_eq!(r.tag(), None);
        assert_eq!(parse("localhost/app").registry(), "localhost");
        assert_eq!(parse("[::1]:5000/app").registry(), "[::1]:5000");
    }

    #[test]
    fn bad_references_say_why() {
        for (input, why) in [
            ("", "empty"),
            ("ghcr.io/Acme/app", "repository component \"Acme\""),
            ("ghcr.io/acme/app:-bad", "tag \"-bad\""),
            ("ghcr.io/acme/app@sha256:abc", "wrong length"),
            ("ghcr.io/acme//app", "repository component \"\""),
            ("app name", "white space"),
            ("ghcr.io/a..b", "repository component"),
        ] {
            let err = input.parse::<Reference>().expect_err(input).to_string();
            assert!(err.contains(why), "{input}: {err}");
        }
        assert!(parse("ghcr.io/a__b/c-d/e---f/g.h").repository() == "a__b/c-d/e---f/g.h");
        assert!(is_valid_tag(&"a".repeat(128)) && !is_valid_tag(&"a".repeat(129)));
    }
}
