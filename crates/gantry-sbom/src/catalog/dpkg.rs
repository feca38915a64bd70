//! Debian packages: `/var/lib/dpkg/status` (and distroless images' `status.d/`, one file per
//! package), the files each package owns (`info/<package>[:<arch>].list`) and its licences from
//! the DEP-5 `copyright` file.
//!
//! Only installed packages are components: a status of `installed` with no error flag.
//! Removed-but-not-purged (`deinstall ok config-files`, `rc` in `dpkg -l`), half-installed and
//! unpacked-only packages are left out, as `dpkg-query` shows them apart.

use std::collections::BTreeMap;

use super::Found;
use super::control::{self, Record};
use crate::fs::{Capture, Filesystem};
use crate::os::OsRelease;
use crate::package::{Ecosystem, Package};
use crate::purl;

/// Whether a `Status:` value says installed (`<want> <flag> installed`, flag `ok`). Records
/// without a status (distroless `status.d`) are installed by construction.
fn installed(record: &Record) -> bool {
    let Some(status) = control::field(record, "Status") else {
        return true;
    };
    let words: Vec<&str> = status.split_whitespace().collect();
    matches!(words.as_slice(), [_, "ok", "installed"])
}

/// Every record of the status file and of `status.d/`, with the file it came from.
fn status_records(fs: &Filesystem) -> Vec<(String, Record)> {
    let mut records: Vec<(String, Record)> = Vec::new();
    for (path, capture) in fs.files() {
        let from_status = path == "var/lib/dpkg/status";
        let from_dir = path.starts_with("var/lib/dpkg/status.d/");
        if !(from_status || from_dir) {
            continue;
        }
        let Capture::Text(text) = capture else {
            continue;
        };
        for record in control::records(&String::from_utf8_lossy(text), false) {
            records.push((path.to_owned(), record));
        }
    }
    records
}

pub(crate) fn catalog(fs: &Filesystem, os: Option<&OsRelease>) -> Found {
    let records = status_records(fs);
    let namespace = os
        .and_then(|o| o.id.clone())
        .unwrap_or_else(|| "debian".into());
    let distro = purl::distro(os);
    let mut found = Found::default();
    // name → purl, for dependencies; names provided by a package resolve to it too.
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    let mut depends: Vec<(usize, String)> = Vec::new();
    for (path, record) in &records {
        if !installed(record) {
            continue;
        }
        let (Some(name), Some(version)) = (
            control::field(record, "Package"),
            control::field(record, "Version"),
        ) else {
            continue;
        };
        let arch = control::field(record, "Architecture").unwrap_or("");
        let source = control::field(record, "Source").map(|s| {
            // `Source: glibc (2.36-9)`: the source version differs from the binary's.
            match s.split_once(' ') {
                Some((n, v)) => format!(
                    "{n}@{}",
                    v.trim().trim_start_matches('(').trim_end_matches(')')
                ),
                None => s.to_owned(),
            }
        });
        let mut qualifiers = vec![("arch", arch)];
        if let Some(distro) = &distro {
            qualifiers.push(("distro", distro));
        }
        if let Some(source) = &source {
            qualifiers.push(("upstream", source));
        }
        let Some(purl) = purl::build("deb", Some(&namespace), name, Some(version), &qualifiers)
        else {
            tracing::warn!("{path}: package {name:?} {version:?} does not form a purl; left out");
            continue;
        };
        let mut package = Package::new(Ecosystem::Deb, name, Some(version), purl.clone()).at(path);
        if !arch.is_empty() {
            package.properties.insert("gantry:arch".into(), arch.into());
        }
        if let Some(source) = &source {
            package
                .properties
                .insert("gantry:source".into(), source.clone());
        }
        for license in copyright_licenses(fs, name) {
            package.license(Some(&license));
        }
        by_name.insert(name.to_owned(), purl.clone());
        for provided in control::field(record, "Provides")
            .into_iter()
            .flat_map(names)
        {
            by_name.entry(provided).or_insert_with(|| purl.clone());
        }
        let index = found.packages.len();
        for field in ["Depends", "Pre-Depends"] {
            if let Some(value) = control::field(record, field) {
                depends.push((index, value.to_owned()));
            }
        }
        for list in [
            format!("var/lib/dpkg/info/{name}.list"),
            format!("var/lib/dpkg/info/{name}:{arch}.list"),
        ] {
            if let Some(Capture::Text(text)) = fs.resolve(&list) {
                for line in String::from_utf8_lossy(text).lines() {
                    let line = line.trim();
                    if !line.is_empty() && line != "/." {
                        found.owned.push((line.to_owned(), purl.clone()));
                    }
                }
            }
        }
        found.packages.push(package);
    }
    resolve_depends(&mut found, &by_name, depends);
    found
}

/// For each `Depends` alternative list, the first alternative that is installed (by name or
/// by `Provides`).
fn resolve_depends(
    found: &mut Found,
    by_name: &BTreeMap<String, String>,
    depends: Vec<(usize, String)>,
) {
    for (index, value) in depends {
        for alternatives in value.split(',') {
            if let Some(target) = alternatives
                .split('|')
                .filter_map(|alternative| names(alternative).next())
                .find_map(|name| by_name.get(&name))
                && *target != found.packages[index].purl
            {
                found.packages[index].depends.insert(target.clone());
            }
        }
    }
}

/// Package names in a relationship field (`libc6 (>= 2.34), libfoo:any`), without versions and
/// architecture qualifiers.
fn names(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split(',').filter_map(|part| {
        let name = part.split_whitespace().next()?;
        let name = name.split(':').next()?.split('(').next()?;
        (!name.is_empty()).then(|| name.to_owned())
    })
}

/// The `License:` short names of a DEP-5 copyright file, in order, once each.
fn copyright_licenses(fs: &Filesystem, package: &str) -> Vec<String> {
    let Some(Capture::Text(text)) = fs.resolve(&format!("usr/share/doc/{package}/copyright"))
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(text);
    if !text.starts_with("Format:") {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("License:") {
            let value = value.trim();
            if !value.is_empty() && !out.iter().any(|l| l == value) {
                out.push(value.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Change, LayerChanges, Node};

    fn fs_with(files: &[(&str, &str)]) -> Filesystem {
        let mut fs = Filesystem::default();
        fs.apply(LayerChanges {
            changes: files
                .iter()
                .map(|(p, t)| {
                    Change::Put((*p).into(), Node::File(Capture::Text(t.as_bytes().into())))
                })
                .collect(),
        });
        fs
    }

    #[test]
    fn only_installed_packages_are_components() {
        let fs = fs_with(&[(
            "var/lib/dpkg/status",
            "Package: a\nStatus: install ok installed\nVersion: 1:2.0+dfsg-1\nArchitecture: amd64\nDepends: b (>= 1) | c, d\nSource: asrc (2.0-1)\n\n\
             Package: removed\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n\
             Package: half\nStatus: install ok half-installed\nVersion: 1\n\n\
             Package: broken\nStatus: install reinstreq installed\nVersion: 1\n\n\
             Package: c\nStatus: hold ok installed\nVersion: 3\nArchitecture: all\nProvides: b\n",
        )]);
        let found = catalog(&fs, None);
        let names: Vec<&str> = found.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(
            found.packages[0].purl,
            "pkg:deb/debian/a@1:2.0%2Bdfsg-1?arch=amd64&upstream=asrc%402.0-1"
        );
        // `b` is provided by c: the first alternative that is installed
        assert_eq!(
            found.packages[0].depends.iter().collect::<Vec<_>>(),
            ["pkg:deb/debian/c@3?arch=all"]
        );
    }
}
