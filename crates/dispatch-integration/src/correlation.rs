//! The correlation id: what ties an integration run to the dispatch that asked for it when GitHub
//! does not say (a 204, GHES, `repository_dispatch`).

use sha2::{Digest as _, Sha256};

/// `gantry-` and 20 hex digits of SHA-256 over the source repository, commit, digest, and the
/// calling run's id and attempt: the same dispatch retried by the same attempt gets the same id,
/// a re-run attempt a new one.
pub fn correlation_id(
    repository: &str,
    commit: &str,
    digest: &str,
    run_id: Option<u64>,
    attempt: Option<u32>,
) -> String {
    let mut hash = Sha256::new();
    for part in [
        repository,
        commit,
        digest,
        &run_id.map(|r| r.to_string()).unwrap_or_default(),
        &attempt.map(|a| a.to_string()).unwrap_or_default(),
    ] {
        hash.update(part.as_bytes());
        hash.update(b"\n");
    }
    let digest = hex::encode(hash.finalize());
    format!("gantry-{}", &digest[..20])
}

/// Whether a run's title names `id` as a whole word (not as part of a longer id).
pub fn title_names(title: &str, id: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    title.match_indices(id).any(|(at, _)| {
        let before = title[..at].chars().next_back();
        let after = title[at + id.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_differ_by_every_part() {
        let base = correlation_id("acme/billing", "abc", "sha256:01", Some(7), Some(1));
        assert_eq!(
            base,
            correlation_id("acme/billing", "abc", "sha256:01", Some(7), Some(1))
        );
        assert!(base.starts_with("gantry-") && base.len() == 27, "{base}");
        for other in [
            correlation_id("acme/orders", "abc", "sha256:01", Some(7), Some(1)),
            correlation_id("acme/billing", "abd", "sha256:01", Some(7), Some(1)),
            correlation_id("acme/billing", "abc", "sha256:02", Some(7), Some(1)),
            correlation_id("acme/billing", "abc", "sha256:01", Some(8), Some(1)),
            correlation_id("acme/billing", "abc", "sha256:01", Some(7), Some(2)),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn a_title_names_an_id_only_as_a_whole_word() {
        let id = "gantry-0123456789abcdef0123";
        assert!(title_names(&format!("integration {id}"), id));
        assert!(title_names(&format!("[{id}] billing"), id));
        assert!(!title_names(&format!("integration {id}9"), id));
        assert!(!title_names(&format!("integration x{id}"), id));
        assert!(!title_names("integration", id));
    }
}
