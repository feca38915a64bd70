//! .NET applications: `*.deps.json`, the dependency manifest the SDK writes beside every app.
//! `libraries` of type `package` are `NuGet` packages; `targets` give their dependencies.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Found;
use crate::fs::{Capture, Filesystem};
use crate::package::{Ecosystem, Package};
use crate::purl;

#[derive(Deserialize)]
struct DepsJson {
    #[serde(default)]
    targets: BTreeMap<String, BTreeMap<String, Target>>,
    #[serde(default)]
    libraries: BTreeMap<String, Library>,
}

#[derive(Deserialize)]
struct Target {
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Library {
    #[serde(rename = "type")]
    kind: String,
}

pub(crate) fn catalog(fs: &Filesystem) -> Found {
    let mut found = Found::default();
    for (path, capture) in fs.files() {
        if !path.ends_with(".deps.json") {
            continue;
        }
        let Capture::Text(text) = capture else {
            continue;
        };
        let deps: DepsJson = match serde_json::from_slice(text) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("/{path} is not a deps.json gantry can read ({e}); left out");
                continue;
            }
        };
        let mut purls: BTreeMap<String, String> = BTreeMap::new();
        for (key, library) in &deps.libraries {
            let Some((name, version)) = key.split_once('/') else {
                continue;
            };
            if library.kind != "package" {
                continue;
            }
            let Some(purl) = purl::build("nuget", None, name, Some(version), &[]) else {
                continue;
            };
            purls.insert(name.to_ascii_lowercase(), purl.clone());
            found
                .packages
                .push(Package::new(Ecosystem::NuGet, name, Some(version), purl).at(path));
        }
        for target in deps.targets.values() {
            for (key, entry) in target {
                let Some((name, _)) = key.split_once('/') else {
                    continue;
                };
                let Some(from) = purls.get(&name.to_ascii_lowercase()) else {
                    continue;
                };
                let Some(package) = found.packages.iter_mut().find(|p| p.purl == *from) else {
                    continue;
                };
                for dependency in entry.dependencies.keys() {
                    if let Some(to) = purls.get(&dependency.to_ascii_lowercase()) {
                        package.depends.insert(to.clone());
                    }
                }
            }
        }
    }
    found
}
