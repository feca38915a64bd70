//! The cataloguers, and how their findings become one inventory: language packages an OS
//! package owns are folded into it, the same purl found twice becomes one package with two
//! locations, and the order is fixed (by purl) so the SBOM is byte-identical run after run.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::fs::{Capture, Filesystem};
use crate::os::OsRelease;
use crate::package::{Ecosystem, Package};

mod apk;
mod cargo;
pub(crate) mod control;
mod dotnet;
mod dpkg;
pub(crate) mod golang;
pub(crate) mod java;
mod npm;
mod python;
mod rpm;

pub(crate) use cargo::from_audit_data;

/// What one cataloguer found: packages, and for OS packages the files each owns (path with a
/// leading `/`, purl).
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub packages: Vec<Package>,
    pub owned: Vec<(String, String)>,
}

impl Found {
    /// Adds to each package (by index) the packages its dependency names resolve to in
    /// `by_name` (names and provided names to purls), never itself.
    fn link_by_name(
        &mut self,
        by_name: &BTreeMap<String, String>,
        wants: Vec<(usize, Vec<String>)>,
    ) {
        for (index, names) in wants {
            for name in names {
                if let Some(target) = by_name.get(&name)
                    && *target != self.packages[index].purl
                {
                    self.packages[index].depends.insert(target.clone());
                }
            }
        }
    }
}

/// Everything found in a filesystem.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The distribution, from `os-release`.
    pub os: Option<OsRelease>,
    /// The packages, sorted by purl, each purl once.
    pub packages: Vec<Package>,
}

impl Inventory {
    /// How many packages of each ecosystem (only those with any).
    pub fn counts(&self) -> BTreeMap<Ecosystem, usize> {
        let mut counts = BTreeMap::new();
        for package in &self.packages {
            *counts.entry(package.ecosystem).or_insert(0) += 1;
        }
        counts
    }
}

fn os_release(fs: &Filesystem) -> Option<OsRelease> {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|path| match fs.resolve(path) {
            Some(Capture::Text(text)) => Some(OsRelease::parse(&String::from_utf8_lossy(text))),
            _ => None,
        })
}

/// Catalogues the filesystem.
pub fn catalog(fs: &Filesystem) -> Result<Inventory> {
    let os = os_release(fs);
    let mut os_found = Found::default();
    for found in [
        dpkg::catalog(fs, os.as_ref()),
        apk::catalog(fs, os.as_ref()),
        rpm::catalog(fs, os.as_ref())?,
    ] {
        os_found.packages.extend(found.packages);
        os_found.owned.extend(found.owned);
    }
    let mut language: Vec<Package> = Vec::new();
    for found in [npm::catalog(fs), python::catalog(fs), dotnet::catalog(fs)] {
        language.extend(found.packages);
    }
    // Packages found inside files (binaries, jars), located where the file is.
    for (path, capture) in fs.files() {
        if let Capture::Found(packages) = capture {
            language.extend(packages.iter().cloned().map(|mut p| {
                p.locations.clear();
                p.at(path)
            }));
        }
    }
    // Which OS package owns each path (canonical: `/lib/x` is `/usr/lib/x` on merged-/usr).
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (path, purl) in &os_found.owned {
        if let Some(canonical) = fs.canonical(path) {
            owner.entry(canonical).or_insert_with(|| purl.clone());
        }
    }
    let owned_by = |package: &Package| -> Option<String> {
        package.locations.iter().find_map(|location| {
            let canonical = fs.canonical(location)?;
            // the manifest itself, or the directory that holds it (`*.dist-info`, an npm package)
            let parent = canonical.rsplit_once('/').map(|(d, _)| d.to_owned());
            owner
                .get(&canonical)
                .or_else(|| parent.and_then(|p| owner.get(&p)))
                .cloned()
        })
    };
    let mut os_packages: BTreeMap<String, Package> = BTreeMap::new();
    for package in os_found.packages {
        insert(&mut os_packages, package);
    }
    let mut folded: BTreeMap<String, String> = BTreeMap::new();
    let mut others: BTreeMap<String, Package> = BTreeMap::new();
    for package in language {
        match owned_by(&package).filter(|o| os_packages.contains_key(o)) {
            Some(owner_purl) => {
                folded.insert(package.purl.clone(), owner_purl.clone());
                if let Some(os_package) = os_packages.get_mut(&owner_purl) {
                    os_package.owns.insert(package.purl);
                }
            }
            None => insert(&mut others, package),
        }
    }
    let mut packages: Vec<Package> = os_packages
        .into_values()
        .chain(others.into_values())
        .collect();
    packages.sort_by(|a, b| a.purl.cmp(&b.purl));
    let known: BTreeSet<String> = packages.iter().map(|p| p.purl.clone()).collect();
    for package in &mut packages {
        let depends = std::mem::take(&mut package.depends);
        package.depends = depends
            .into_iter()
            .map(|d| folded.get(&d).cloned().unwrap_or(d))
            .filter(|d| known.contains(d) && *d != package.purl)
            .collect();
    }
    Ok(Inventory { os, packages })
}

fn insert(map: &mut BTreeMap<String, Package>, package: Package) {
    match map.get_mut(&package.purl) {
        Some(existing) => existing.merge(package),
        None => {
            map.insert(package.purl.clone(), package);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Change, LayerChanges, Node};

    fn fs_with(files: &[(&str, &[u8])]) -> Filesystem {
        let mut fs = Filesystem::default();
        fs.apply(LayerChanges {
            changes: files
                .iter()
                .map(|(p, t)| Change::Put((*p).into(), Node::File(Capture::Text((*t).into()))))
                .collect(),
        });
        fs
    }

    #[test]
    fn dotnet_deps_json_lists_packages_not_projects_with_their_graph() {
        let deps = br#"{
          "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0"},
          "targets": {".NETCoreApp,Version=v8.0": {
            "Shop/1.0.0": {"dependencies": {"Newtonsoft.Json": "13.0.3", "Serilog": "3.1.1"}},
            "Newtonsoft.Json/13.0.3": {},
            "Serilog/3.1.1": {"dependencies": {"Newtonsoft.Json": "13.0.3"}}
          }},
          "libraries": {
            "Shop/1.0.0": {"type": "project", "serviceable": false},
            "Newtonsoft.Json/13.0.3": {"type": "package", "serviceable": true, "sha512": "sha512-x"},
            "Serilog/3.1.1": {"type": "package", "serviceable": true, "sha512": "sha512-y"}
          }
        }"#;
        let inventory = catalog(&fs_with(&[("app/Shop.deps.json", deps)])).expect("catalog");
        let purls: Vec<&str> = inventory.packages.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:nuget/Newtonsoft.Json@13.0.3",
                "pkg:nuget/Serilog@3.1.1"
            ]
        );
        assert_eq!(
            inventory.packages[1].depends.iter().collect::<Vec<_>>(),
            ["pkg:nuget/Newtonsoft.Json@13.0.3"]
        );
    }

    #[test]
    fn python_requirements_resolve_by_normalised_name_and_extras_are_not_installed() {
        let inventory = catalog(&fs_with(&[
            (
                "site-packages/app-1.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: App\nVersion: 1.0\nRequires-Dist: Foo_Bar (>=2)\nRequires-Dist: extra-only ; extra == 'x'\n\nbody: not a field\n",
            ),
            ("site-packages/foo_bar-2.0.dist-info/METADATA", b"Name: foo-bar\nVersion: 2.0\n"),
            ("site-packages/extra_only-1.dist-info/METADATA", b"Name: extra-only\nVersion: 1\n"),
        ]))
        .expect("catalog");
        let app = inventory
            .packages
            .iter()
            .find(|p| p.name == "app")
            .expect("app");
        assert_eq!(
            app.depends.iter().collect::<Vec<_>>(),
            ["pkg:pypi/foo-bar@2.0"]
        );
    }

    #[test]
    fn the_same_purl_in_two_places_is_one_package_with_two_occurrences() {
        let manifest = br#"{"name":"ms","version":"2.1.3"}"#;
        let inventory = catalog(&fs_with(&[
            ("a/node_modules/ms/package.json", manifest),
            ("b/node_modules/ms/package.json", manifest),
        ]))
        .expect("catalog");
        assert_eq!(inventory.packages.len(), 1);
        assert_eq!(inventory.packages[0].locations.len(), 2);
    }

    proptest::proptest! {
        /// Whatever bytes stand where a cataloguer looks, cataloguing never panics.
        #[test]
        fn cataloguers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048), which in 0usize..7) {
            let path = [
                "var/lib/dpkg/status",
                "var/lib/dpkg/status.d/x",
                "lib/apk/db/installed",
                "app/node_modules/x/package.json",
                "usr/lib/python3/dist-packages/x-1.dist-info/METADATA",
                "app/x.deps.json",
                "usr/lib/sysimage/rpm/rpmdb.sqlite",
            ][which];
            let _ = catalog(&fs_with(&[(path, &bytes), ("etc/os-release", &bytes)]));
        }

        /// Text shaped like the formats (lines of `Key: value`, JSON-ish braces) as well.
        #[test]
        fn cataloguers_never_panic_on_near_misses(text in "([A-Za-z:{}\\[\\]\",@/ 0-9.éü€-]{0,40}\n){0,30}", which in 0usize..6) {
            let path = [
                "var/lib/dpkg/status",
                "lib/apk/db/installed",
                "app/node_modules/x/package.json",
                "usr/lib/python3/dist-packages/x-1.dist-info/METADATA",
                "app/x.deps.json",
                "var/lib/dpkg/status.d/y",
            ][which];
            let _ = catalog(&fs_with(&[(path, text.as_bytes())]));
        }
    }
}
