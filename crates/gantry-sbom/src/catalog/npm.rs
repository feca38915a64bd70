//! npm packages: every `node_modules/<name>/package.json` (and `node_modules/@scope/<name>/`),
//! dependencies resolved the way Node resolves them (the package's own `node_modules`, then each
//! enclosing one).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Found;
use crate::fs::{Capture, Filesystem};
use crate::package::{Ecosystem, Package};
use crate::purl;

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
    license: Option<serde_json::Value>,
    licenses: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    dependencies: BTreeMap<String, serde_json::Value>,
    #[serde(default, rename = "optionalDependencies")]
    optional: BTreeMap<String, serde_json::Value>,
}

/// `"MIT"`, `{"type": "MIT"}`, or the old `licenses: [{"type": …}]`.
fn license_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("type")?.as_str().map(str::to_owned),
        _ => None,
    }
}

pub(crate) fn catalog(fs: &Filesystem) -> Found {
    let mut found = Found::default();
    // package directory → (index, dependency names)
    let mut by_dir: BTreeMap<String, String> = BTreeMap::new();
    let mut wants: Vec<(usize, String, Vec<String>)> = Vec::new();
    for (path, capture) in fs.files() {
        let Some(dir) = path.strip_suffix("/package.json") else {
            continue;
        };
        if !dir.contains("node_modules/") {
            continue;
        }
        let Capture::Text(text) = capture else {
            continue;
        };
        let manifest: Manifest = match serde_json::from_slice(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("/{path} is not a package.json gantry can read ({e}); left out");
                continue;
            }
        };
        let (Some(name), Some(version)) = (manifest.name.as_deref(), manifest.version.as_deref())
        else {
            continue;
        };
        let (namespace, short) = match name.split_once('/') {
            Some((scope, short)) if scope.starts_with('@') => (Some(scope), short),
            _ => (None, name),
        };
        let Some(purl) = purl::build("npm", namespace, short, Some(version), &[]) else {
            continue;
        };
        let mut package = Package::new(Ecosystem::Npm, name, Some(version), purl.clone()).at(path);
        package.license(manifest.license.as_ref().and_then(license_of).as_deref());
        for license in manifest.licenses.iter().flatten() {
            package.license(license_of(license).as_deref());
        }
        by_dir.insert(dir.to_owned(), purl);
        let dependencies = manifest
            .dependencies
            .into_keys()
            .chain(manifest.optional.into_keys())
            .collect();
        wants.push((found.packages.len(), dir.to_owned(), dependencies));
        found.packages.push(package);
    }
    for (index, dir, dependencies) in wants {
        for dependency in dependencies {
            if let Some(target) = resolve(&by_dir, &dir, &dependency)
                && *target != found.packages[index].purl
            {
                found.packages[index].depends.insert(target.clone());
            }
        }
    }
    found
}

/// Node's lookup: `<dir>/node_modules/<name>`, then `node_modules/<name>` beside each enclosing
/// `node_modules`.
fn resolve<'a>(by_dir: &'a BTreeMap<String, String>, dir: &str, name: &str) -> Option<&'a String> {
    if let Some(found) = by_dir.get(&format!("{dir}/node_modules/{name}")) {
        return Some(found);
    }
    let mut rest = dir;
    while let Some(at) = rest.rfind("node_modules/") {
        let base = &rest[..at];
        if let Some(found) = by_dir.get(&format!("{base}node_modules/{name}")) {
            return Some(found);
        }
        rest = base.trim_end_matches('/');
    }
    None
}
