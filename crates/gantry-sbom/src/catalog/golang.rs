//! Go binaries: the build information the Go linker embeds (Go 1.18 and later write it inline:
//! a 32-byte header, then the Go version and the module information as length-prefixed
//! strings). The main module is the application; `dep` lines are its modules, a `=>` line
//! replaces the `dep` before it; the standard library is `pkg:golang/stdlib@<version>`.

use crate::package::{Ecosystem, Package};
use crate::purl;

/// The sentinels around the module information.
const SENTINEL: usize = 16;

fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn string_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let (len, used) = uvarint(bytes.get(at..)?)?;
    let start = at + used;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    Some((bytes.get(start..end)?, end))
}

/// The packages of a binary whose build information starts at `info[0]` (the magic).
pub(crate) fn from_buildinfo(path: &str, info: &[u8]) -> Vec<Package> {
    let flags = info.get(15).copied().unwrap_or(0);
    if flags & 0x2 == 0 {
        tracing::warn!(
            "/{path}: a Go binary built before Go 1.18 (build information by pointer); its modules are not listed"
        );
        return Vec::new();
    }
    let Some((version, next)) = string_at(info, 32) else {
        return Vec::new();
    };
    let Some((mut modinfo, _)) = string_at(info, next) else {
        return Vec::new();
    };
    if modinfo.len() > 2 * SENTINEL && modinfo[modinfo.len() - SENTINEL - 1] == b'\n' {
        modinfo = &modinfo[SENTINEL..modinfo.len() - SENTINEL];
    }
    let go = String::from_utf8_lossy(version);
    let go = go
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_start_matches("go");
    parse_modinfo(path, go, &String::from_utf8_lossy(modinfo))
}

fn module(path: &str, module: &str, version: Option<&str>) -> Option<Package> {
    let version = version.filter(|v| !v.is_empty() && *v != "(devel)");
    let (namespace, name) = match module.rsplit_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, module),
    };
    let purl = purl::build("golang", namespace, name, version, &[])?;
    Some(Package::new(Ecosystem::Go, module, version, purl).at(path))
}

pub(crate) fn parse_modinfo(path: &str, go: &str, modinfo: &str) -> Vec<Package> {
    let mut main: Option<Package> = None;
    let mut deps: Vec<Package> = Vec::new();
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod", name, version, ..] => main = module(path, name, Some(version)),
            ["dep", name, version, ..] => deps.extend(module(path, name, Some(version))),
            ["=>", name, rest @ ..] => {
                // A replacement of the dep before it: by a module version, or by a local path.
                let Some(replaced) = deps.pop() else { continue };
                let version = rest.first().copied().filter(|v| !v.is_empty());
                if version.is_some() {
                    if let Some(mut replacement) = module(path, name, version) {
                        replacement
                            .properties
                            .insert("gantry:go:replaces".into(), replaced.purl.clone());
                        deps.push(replacement);
                    }
                } else {
                    let mut kept = replaced;
                    kept.properties
                        .insert("gantry:go:replaced-by-path".into(), (*name).to_owned());
                    deps.push(kept);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if !go.is_empty()
        && let Some(purl) = purl::build("golang", None, "stdlib", Some(go), &[])
    {
        out.push(Package::new(Ecosystem::Go, "stdlib", Some(go), purl).at(path));
    }
    if let Some(mut main) = main {
        main.application = true;
        main.depends.extend(out.iter().map(|p| p.purl.clone()));
        main.depends.extend(deps.iter().map(|p| p.purl.clone()));
        out.push(main);
    }
    out.extend(deps);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_replace_the_dep_before_them() {
        let packages = parse_modinfo(
            "usr/bin/hello",
            "1.22.1",
            "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\ndep\tgolang.org/x/text\tv0.3.7\th1:x\n=>\tgolang.org/x/text\tv0.3.8\th1:y\ndep\tgithub.com/a/b\tv1.0.0\th1:z\n=>\t../b\t\t\nbuild\t-compiler=gc\n",
        );
        let purls: Vec<&str> = packages.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:golang/stdlib@1.22.1",
                "pkg:golang/example.com/hello",
                "pkg:golang/golang.org/x/text@v0.3.8",
                "pkg:golang/github.com/a/b@v1.0.0",
            ]
        );
        assert!(packages[1].application);
        assert_eq!(
            packages[3]
                .properties
                .get("gantry:go:replaced-by-path")
                .map(String::as_str),
            Some("../b")
        );
    }

    proptest::proptest! {
        #[test]
        fn buildinfo_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = from_buildinfo("x", &bytes);
        }
    }
}
