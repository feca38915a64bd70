//! Java archives (jar, war, ear): Maven coordinates from every
//! `META-INF/maven/<group>/<artifact>/pom.properties`, else from `META-INF/MANIFEST.MF`; jars
//! nested one level deep (Spring Boot's `BOOT-INF/lib/`, `WEB-INF/lib/`) are read too. The
//! archive is spooled (in memory up to 8 MiB, then a temporary file) because a zip's directory
//! is at its end.

use std::io::{Read, Seek};

use super::control;
use crate::error::{Result, SbomError};
use crate::package::{Ecosystem, Package};
use crate::purl;

const SPOOL_IN_MEMORY: usize = 8 * 1024 * 1024;
const ENTRY_LIMIT: u64 = 1024 * 1024;
const NESTED_LIMIT: u64 = 128 * 1024 * 1024;

/// The packages in the jar streaming from `reader` (no locations set).
pub(crate) fn read_jar(path: &str, reader: &mut dyn Read) -> Result<Vec<Package>> {
    let io = |e| SbomError::io(format!("/{path}"), e);
    let mut spool = tempfile::SpooledTempFile::new(SPOOL_IN_MEMORY);
    std::io::copy(reader, &mut spool).map_err(io)?;
    spool.rewind().map_err(io)?;
    Ok(packages_in(path, spool, 0))
}

fn packages_in<R: Read + Seek>(path: &str, archive: R, depth: u8) -> Vec<Package> {
    let mut archive = match zip::ZipArchive::new(archive) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("/{path} is not a zip archive gantry can read ({e}); left out");
            return Vec::new();
        }
    };
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(std::borrow::Cow::into_owned))
        .collect();
    let mut out = Vec::new();
    let read = |archive: &mut zip::ZipArchive<R>, name: &str, limit: u64| -> Option<Vec<u8>> {
        let entry = archive.by_name(name).ok()?;
        if entry.size() > limit {
            tracing::warn!("/{path}!/{name} is larger than {limit} bytes; not read");
            return None;
        }
        let mut bytes = Vec::new();
        entry.take(limit).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    };
    let mut poms: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("META-INF/maven/") && n.ends_with("/pom.properties"))
        .collect();
    poms.sort();
    for name in poms {
        let Some(bytes) = read(&mut archive, name, ENTRY_LIMIT) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let value = |key: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().to_owned())
            })
        };
        if let (Some(group), Some(artifact), Some(version)) =
            (value("groupId"), value("artifactId"), value("version"))
        {
            out.extend(maven(&group, &artifact, &version));
        }
    }
    if out.is_empty()
        && let Some(bytes) = read(&mut archive, "META-INF/MANIFEST.MF", ENTRY_LIMIT)
    {
        let text = String::from_utf8_lossy(&bytes);
        if let Some(record) = control::records(&text, true).into_iter().next() {
            let name = control::field(&record, "Bundle-SymbolicName")
                .map(|n| n.split(';').next().unwrap_or(n).trim())
                .or_else(|| control::field(&record, "Implementation-Title"));
            let version = control::field(&record, "Bundle-Version")
                .or_else(|| control::field(&record, "Implementation-Version"));
            let group = control::field(&record, "Implementation-Vendor-Id");
            if let (Some(name), Some(version)) = (name, version) {
                let (group, artifact) = match group {
                    Some(g) => (g.to_owned(), name.to_owned()),
                    None => match name.rsplit_once('.') {
                        Some((g, a)) => (g.to_owned(), a.to_owned()),
                        None => (name.to_owned(), name.to_owned()),
                    },
                };
                out.extend(maven(&group, &artifact, version));
            }
        }
    }
    if depth == 0 {
        for name in &names {
            if !crate::fs::is_java_archive(name) {
                continue;
            }
            let Some(bytes) = read(&mut archive, name, NESTED_LIMIT) else {
                continue;
            };
            let inner = format!("{path}!/{name}");
            for mut package in packages_in(&inner, std::io::Cursor::new(bytes), 1) {
                package
                    .properties
                    .entry("gantry:java:nested".into())
                    .or_insert_with(|| name.clone());
                out.push(package);
            }
        }
    }
    out
}

fn maven(group: &str, artifact: &str, version: &str) -> Option<Package> {
    let purl = purl::build("maven", Some(group), artifact, Some(version), &[])?;
    Some(Package::new(
        Ecosystem::Maven,
        &format!("{group}:{artifact}"),
        Some(version),
        purl,
    ))
}
