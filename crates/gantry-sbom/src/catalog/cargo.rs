//! Rust binaries built with cargo-auditable: the dependency tree in the `.dep-v0` section
//! (zlib-compressed JSON, the format `auditable-serde` reads and checks). Build-time dependencies
//! are not in the binary and are left out; the root package is the application.

use crate::binary;
use crate::error::{Result, SbomError};
use crate::package::{Ecosystem, Package};
use crate::purl;

pub(crate) fn from_audit_data(path: &str, compressed: &[u8]) -> Result<Vec<Package>> {
    let json = binary::inflate_audit_data(path, compressed)?;
    let info: auditable_serde::VersionInfo =
        serde_json::from_slice(&json).map_err(|e| SbomError::Database {
            path: format!("/{path}"),
            reason: format!("cargo-auditable data is not valid: {e}"),
        })?;
    let purls: Vec<Option<String>> = info
        .packages
        .iter()
        .map(|p| purl::build("cargo", None, &p.name, Some(&p.version.to_string()), &[]))
        .collect();
    let mut out = Vec::new();
    for (index, p) in info.packages.iter().enumerate() {
        if p.kind != auditable_serde::DependencyKind::Runtime {
            continue;
        }
        let Some(purl) = purls[index].clone() else {
            continue;
        };
        let version = p.version.to_string();
        let mut package = Package::new(Ecosystem::Cargo, &p.name, Some(&version), purl).at(path);
        package.application = p.root;
        let source = match &p.source {
            auditable_serde::Source::CratesIo => "crates.io".to_owned(),
            auditable_serde::Source::Git => "git".to_owned(),
            auditable_serde::Source::Local => "local".to_owned(),
            auditable_serde::Source::Registry => "registry".to_owned(),
            other => format!("{other:?}"),
        };
        package
            .properties
            .insert("gantry:cargo:source".into(), source);
        for &dependency in &p.dependencies {
            let runtime = info
                .packages
                .get(dependency)
                .is_some_and(|d| d.kind == auditable_serde::DependencyKind::Runtime);
            if runtime && let Some(Some(target)) = purls.get(dependency) {
                package.depends.insert(target.clone());
            }
        }
        out.push(package);
    }
    Ok(out)
}
