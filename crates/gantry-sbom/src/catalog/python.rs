//! Python packages: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and Debian's `*.egg-info`
//! files. Names are normalised as PEP 503 does (`Foo_Bar` → `foo-bar`) for the purl.

use std::collections::BTreeMap;

use super::Found;
use super::control;
use crate::fs::{Capture, Filesystem};
use crate::package::{Ecosystem, Package};
use crate::purl;

/// PEP 503: lowercase, runs of `-`, `_`, `.` become one `-`.
pub(crate) fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Trove licence classifiers, for packages that state their licence only that way.
fn classifier_license(classifier: &str) -> Option<&'static str> {
    let name = classifier
        .strip_prefix("License :: ")?
        .rsplit(" :: ")
        .next()?;
    Some(match name {
        "MIT License" => "MIT",
        "Apache Software License" => "Apache-2.0",
        "BSD License" => "BSD-3-Clause",
        "ISC License (ISCL)" => "ISC",
        "Mozilla Public License 2.0 (MPL 2.0)" => "MPL-2.0",
        "Python Software Foundation License" => "PSF-2.0",
        "GNU General Public License v2 (GPLv2)" => "GPL-2.0-only",
        "GNU General Public License v3 (GPLv3)" => "GPL-3.0-only",
        "GNU Lesser General Public License v3 (LGPLv3)" => "LGPL-3.0-only",
        "The Unlicense (Unlicense)" => "Unlicense",
        _ => return None,
    })
}

fn is_metadata(path: &str) -> bool {
    path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        || (path.ends_with(".egg-info") && path.contains("-packages/"))
}

pub(crate) fn catalog(fs: &Filesystem) -> Found {
    let mut found = Found::default();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    let mut wants: Vec<(usize, Vec<String>)> = Vec::new();
    for (path, capture) in fs.files() {
        if !is_metadata(path) {
            continue;
        }
        let Capture::Text(text) = capture else {
            continue;
        };
        let text = String::from_utf8_lossy(text);
        let Some(record) = control::records(&text, true).into_iter().next() else {
            continue;
        };
        let (Some(name), Some(version)) = (
            control::field(&record, "Name"),
            control::field(&record, "Version"),
        ) else {
            continue;
        };
        let normalised = normalise(name);
        let Some(purl) = purl::build("pypi", None, &normalised, Some(version), &[]) else {
            continue;
        };
        let mut package =
            Package::new(Ecosystem::Python, &normalised, Some(version), purl.clone()).at(path);
        if let Some(expression) = control::field(&record, "License-Expression") {
            package.license(Some(expression));
        } else if let Some(license) = control::field(&record, "License")
            .filter(|l| !l.contains('\n') && l.len() <= 128 && !l.eq_ignore_ascii_case("unknown"))
        {
            package.license(Some(license));
        } else {
            for classifier in control::fields(&record, "Classifier") {
                package.license(classifier_license(classifier));
            }
        }
        let requires = control::fields(&record, "Requires-Dist")
            // requirements behind an extra are not installed by the package itself
            .filter(|r| !r.contains("extra =="))
            .filter_map(|r| {
                let end = r
                    .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                    .unwrap_or(r.len());
                (end > 0).then(|| normalise(&r[..end]))
            })
            .collect();
        by_name.entry(normalised).or_insert(purl);
        wants.push((found.packages.len(), requires));
        found.packages.push(package);
    }
    found.link_by_name(&by_name, wants);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_as_pep_503_says() {
        assert_eq!(normalise("Foo_Bar"), "foo-bar");
        assert_eq!(normalise("zope.interface"), "zope-interface");
        assert_eq!(normalise("a--_.b"), "a-b");
    }
}
