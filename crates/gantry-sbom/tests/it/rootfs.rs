//! Real Debian root filesystems (mmdebstrap), catalogued from the directory.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::{dpkg_installed, purls, sbom_debs, sbom_of, validate};

#[test]
fn minbase_debian_packages_are_exactly_what_dpkg_says() {
    let Some(root) = gantry_testkit::component::sbom_rootfs("minbase") else {
        return;
    };
    let sbom = sbom_of(&root);
    let json: Value = serde_json::from_slice(&sbom).expect("json");
    let truth = dpkg_installed(&root);
    assert!(
        truth.len() > 80,
        "a minbase Debian has ~96 packages, dpkg says {}",
        truth.len()
    );
    let found = sbom_debs(&json);
    let missed: Vec<_> = truth.difference(&found).collect();
    let extra: Vec<_> = found.difference(&truth).collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "recall misses {missed:?}; precision: extra {extra:?}"
    );
    assert!(validate(&sbom) || !gantry_testkit::in_ci());
}

#[test]
fn removed_but_not_purged_packages_are_not_components() {
    let Some(root) = gantry_testkit::component::sbom_rootfs("lang") else {
        return;
    };
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).expect("status");
    assert!(
        status.contains("Package: procps\nStatus: deinstall ok config-files"),
        "the fixture must hold the trap: procps removed, not purged"
    );
    let sbom = sbom_of(&root);
    let json: Value = serde_json::from_slice(&sbom).expect("json");
    let found = sbom_debs(&json);
    assert!(
        !found.iter().any(|p| p.starts_with("procps ")),
        "procps is removed: {found:?}"
    );
    assert_eq!(found, dpkg_installed(&root));
    validate(&sbom);
}

#[test]
fn language_packages_are_found_and_those_debian_owns_are_folded_into_it() {
    let Some(root) = gantry_testkit::component::sbom_rootfs("lang") else {
        return;
    };
    let sbom = sbom_of(&root);
    let json: Value = serde_json::from_slice(&sbom).expect("json");
    let all = purls(&json);
    for expected in [
        // Debian's python3-requests and its jar: linked to the deb, not listed on their own
        "pkg:pypi/requests@2.28.1",
        "pkg:maven/org.apache.commons/commons-lang3@3.12.0",
        // pip-installed, npm, Go, Rust: no Debian package owns them
        "pkg:pypi/six@1.16.0",
        "pkg:npm/debug@4.3.4",
        "pkg:npm/ms@2.1.2",
        "pkg:npm/ms@2.1.3",
        "pkg:npm/%40types/ms@0.7.34",
        "pkg:golang/example.com/gantry/hello",
        "pkg:golang/example.com/fork/text@v0.7.1",
        "pkg:golang/stdlib@1.19.8",
        "pkg:cargo/uv@0.13.9",
    ] {
        assert!(all.contains(expected), "{expected} is missing");
    }
    let component = |purl: &str| {
        crate::common::components(&json)
            .find(|c| c["purl"] == purl)
            .cloned()
            .unwrap_or_else(|| panic!("no component {purl}"))
    };
    // the owned requests is not its own component; the deb says it owns it
    assert!(crate::common::components(&json).all(|c| c["purl"] != "pkg:pypi/requests@2.28.1"));
    let deb = crate::common::components(&json)
        .find(|c| c["name"] == "python3-requests")
        .expect("python3-requests");
    assert!(
        deb["properties"]
            .as_array()
            .expect("properties")
            .iter()
            .any(|p| p["name"] == "gantry:owns" && p["value"] == "pkg:pypi/requests@2.28.1")
    );
    // the jar copied to /srv/app is not Debian's: it is listed, at its path
    let jar = component("pkg:maven/org.apache.commons/commons-lang3@3.12.0");
    assert_eq!(
        jar["evidence"]["occurrences"],
        serde_json::json!([{"location": "/srv/app/lib/commons-lang3.jar"}])
    );
    // npm's tree: debug depends on the ms nested under it, not the top-level one
    let depends = |r: &str| -> BTreeSet<String> {
        json["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .find(|d| d["ref"] == r)
            .map(|d| {
                d["dependsOn"]
                    .as_array()
                    .expect("dependsOn")
                    .iter()
                    .map(|v| v.as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        depends("pkg:npm/debug@4.3.4"),
        BTreeSet::from(["pkg:npm/ms@2.1.2".to_owned()])
    );
    // the Go main module is the application and depends on the replacement, not the original
    assert_eq!(
        component("pkg:golang/example.com/gantry/hello")["type"],
        "application"
    );
    assert!(
        depends("pkg:golang/example.com/gantry/hello")
            .contains("pkg:golang/example.com/fork/text@v0.7.1")
    );
    assert!(
        !all.iter()
            .any(|p| p.starts_with("pkg:golang/golang.org/x/text")),
        "the replaced module is not listed"
    );
    // uv's dependency graph from cargo-auditable
    assert_eq!(component("pkg:cargo/uv@0.13.9")["type"], "application");
    assert!(depends("pkg:cargo/uv@0.13.9").len() > 10);
    validate(&sbom);
}

#[test]
fn the_same_filesystem_gives_byte_identical_sboms() {
    let Some(root) = gantry_testkit::component::sbom_rootfs("lang") else {
        return;
    };
    let first = sbom_of(&root);
    let second = sbom_of(&root);
    assert!(first == second, "two runs differ");
    let json: Value = serde_json::from_slice(&first).expect("json");
    let serial = json["serialNumber"].as_str().expect("serial");
    assert!(
        serial.starts_with("urn:uuid:") && serial.as_bytes()[23] == b'5',
        "a UUIDv5: {serial}"
    );
    // purls once each
    let listed: Vec<&str> = crate::common::components(&json)
        .filter_map(|c| c["purl"].as_str())
        .collect();
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(listed.len(), unique.len(), "duplicate purls");
}
