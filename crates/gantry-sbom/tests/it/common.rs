//! What the tests share: SBOMs of a directory, the schema check, the package managers' view.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The SBOM of a directory, as bytes.
pub fn sbom_of(dir: &Path) -> Vec<u8> {
    let inventory = gantry_sbom::catalog_rootfs(dir).expect("cataloguing the rootfs");
    gantry_sbom::write(&inventory, &subject(), &tool())
}

pub fn subject() -> gantry_sbom::Subject {
    gantry_sbom::Subject {
        kind: "file",
        name: "rootfs".into(),
        version: None,
        purl: None,
        created: None,
    }
}

pub fn tool() -> gantry_sbom::Tool {
    gantry_sbom::Tool {
        name: "gantry".into(),
        version: "test".into(),
    }
}

/// Checks `sbom` against the official CycloneDX 1.6 JSON schema (the testkit's validator).
pub fn validate(sbom: &[u8]) -> bool {
    gantry_testkit::peers::validate_cyclonedx(sbom)
}

/// `name version arch` of every installed package, as dpkg itself says (`ii` rows only).
pub fn dpkg_installed(root: &Path) -> BTreeSet<String> {
    let output = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args([
            "-W",
            "-f",
            "${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n",
        ])
        .output()
        .expect("running dpkg-query");
    assert!(output.status.success(), "dpkg-query failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("ii  "))
        .map(str::to_owned)
        .collect()
}

/// `name version arch` of every deb component of an SBOM.
pub fn sbom_debs(sbom: &Value) -> BTreeSet<String> {
    sbom_os_packages(sbom, "deb")
}

/// `name version arch` of every component of purl type `ty` (`deb`, `rpm`).
pub fn sbom_os_packages(sbom: &Value, ty: &str) -> BTreeSet<String> {
    let prefix = format!("pkg:{ty}/");
    components(sbom)
        .filter(|c| c["purl"].as_str().is_some_and(|p| p.starts_with(&prefix)))
        .map(|c| {
            let arch = c["properties"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "gantry:arch")
                .and_then(|p| p["value"].as_str())
                .unwrap_or("");
            format!(
                "{} {} {arch}",
                c["name"].as_str().unwrap_or(""),
                c["version"].as_str().unwrap_or("")
            )
        })
        .collect()
}

pub fn components(sbom: &Value) -> impl Iterator<Item = &Value> {
    sbom["components"].as_array().into_iter().flatten()
}

/// Every purl in an SBOM, with the language packages an OS package owns (`gantry:owns`).
pub fn purls(sbom: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in components(sbom) {
        if let Some(purl) = c["purl"].as_str() {
            out.insert(purl.to_owned());
        }
        for p in c["properties"].as_array().into_iter().flatten() {
            if p["name"] == "gantry:owns" {
                out.insert(p["value"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    out
}

/// Catalogues an OCI layout's one image, its layers read from the blob files in order.
pub fn catalog_layout(layout: &Path) -> gantry_sbom::Inventory {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(digest)).expect("manifest")).expect("json");
    let mut fs = gantry_sbom::Filesystem::default();
    for layer in manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("digest");
        let file = std::fs::File::open(blob(digest)).expect("layer");
        fs.apply(gantry_sbom::read_layer(digest, file, u64::MAX).expect("read layer"));
    }
    gantry_sbom::catalog(&fs).expect("catalog")
}
