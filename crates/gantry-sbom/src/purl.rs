//! Package URLs, built by the `packageurl` crate (which passes the purl-spec test suite), so
//! encoding (`+` as `%2B`, the npm scope's `@` as `%40`, Debian's epoch kept in the version) is
//! the spec's, not ours.

use crate::os::OsRelease;

/// `pkg:<ty>/<namespace>/<name>@<version>?<qualifiers>`, qualifiers sorted by the spec's rule.
/// `None` when the parts cannot form a purl (an empty name).
pub(crate) fn build(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, &str)],
) -> Option<String> {
    let mut purl = packageurl::PackageUrl::new(ty, name).ok()?;
    if let Some(namespace) = namespace.filter(|n| !n.is_empty()) {
        purl.with_namespace(namespace).ok()?;
    }
    if let Some(version) = version.filter(|v| !v.is_empty()) {
        purl.with_version(version).ok()?;
    }
    for (key, value) in qualifiers {
        if !value.is_empty() {
            purl.add_qualifier(*key, *value).ok()?;
        }
    }
    Some(purl.to_string())
}

/// The purl of an image: `pkg:oci/<name>@<digest>?repository_url=<registry>/<repository>`, the
/// name being the repository's last segment (the purl-spec's `oci` type).
pub fn image(repository_url: &str, digest: &str) -> Option<String> {
    let name = repository_url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())?;
    build(
        "oci",
        None,
        &name.to_ascii_lowercase(),
        Some(digest),
        &[("repository_url", repository_url)],
    )
}

/// The one `distro=` rule gantry uses for OS packages: `<ID>-<VERSION_ID>` from `/etc/os-release`
/// (`debian-12`, `alpine-3.20.3`, `fedora-40`); `<ID>-<VERSION_CODENAME>` when there is no
/// version (Debian testing); `<ID>` alone when there is neither.
pub(crate) fn distro(os: Option<&OsRelease>) -> Option<String> {
    let os = os?;
    let id = os.id.as_deref()?;
    Some(
        match os.version_id.as_deref().or(os.version_codename.as_deref()) {
            Some(version) => format!("{id}-{version}"),
            None => id.to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_versions_keep_the_epoch_and_encode_plus() {
        assert_eq!(
            build(
                "deb",
                Some("debian"),
                "libgcc-s1",
                Some("1:12.2.0-14+deb12u1"),
                &[("arch", "amd64"), ("distro", "debian-12")]
            )
            .as_deref(),
            Some("pkg:deb/debian/libgcc-s1@1:12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12")
        );
    }

    #[test]
    fn images_are_oci_purls_with_their_repository() {
        assert_eq!(
            image("ghcr.io/acme/billing", "sha256:abc").as_deref(),
            Some("pkg:oci/billing@sha256:abc?repository_url=ghcr.io%2Facme%2Fbilling")
        );
    }

    #[test]
    fn npm_scopes_are_encoded() {
        assert_eq!(
            build("npm", Some("@babel"), "core", Some("7.0.0"), &[]).as_deref(),
            Some("pkg:npm/%40babel/core@7.0.0")
        );
    }

    #[test]
    fn qualifiers_are_sorted_and_empty_ones_dropped() {
        assert_eq!(
            build(
                "rpm",
                Some("fedora"),
                "bash",
                Some("5.2-1"),
                &[("epoch", ""), ("distro", "fedora-40"), ("arch", "x86_64")]
            )
            .as_deref(),
            Some("pkg:rpm/fedora/bash@5.2-1?arch=x86_64&distro=fedora-40")
        );
    }
}
