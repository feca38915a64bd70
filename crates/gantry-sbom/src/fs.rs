//! The image's final filesystem, as far as the catalogue needs it: which files it wants to read
//! (`want`), what it kept of them (`Capture`), and the layers applied in order with their
//! whiteouts (`Filesystem::apply`). Everything else is streamed past and forgotten, so memory
//! grows with the package databases, not with the image.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use crate::error::{Result, SbomError};
use crate::package::Package;

/// How many symlinks a path may pass through (Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// What the catalogue wants of a file, decided from its path and mode alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Read it whole, up to `limit` bytes (larger is an error).
    Text { limit: u64 },
    /// Only note that it exists (a package database format gantry refuses).
    Marker,
    /// A Java archive: read its Maven metadata.
    Jar,
    /// Maybe a Go or Rust binary: scan it.
    Executable,
}

const MIB: u64 = 1024 * 1024;

/// Jars larger than this are not read (a clear error names the file).
const JAR_LIMIT: u64 = 1024 * MIB;

/// What the catalogue wants of the file at `path` (no leading `/`), `mode` its permission bits.
pub(crate) fn want(path: &str, mode: u32) -> Option<Want> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let text = |limit| Some(Want::Text { limit });
    match (dir, name) {
        ("var/lib/dpkg", "status") | ("lib/apk/db", "installed") => return text(64 * MIB),
        ("var/lib/dpkg/status.d", _) if !name.ends_with(".md5sums") => return text(MIB),
        ("var/lib/dpkg/info", _) if extension(name) == Some("list") => return text(16 * MIB),
        ("var/lib/rpm" | "usr/lib/sysimage/rpm", "rpmdb.sqlite" | "rpmdb.sqlite-wal") => {
            return text(256 * MIB);
        }
        ("var/lib/rpm" | "usr/lib/sysimage/rpm", "Packages" | "Packages.db") => {
            return Some(Want::Marker);
        }
        ("etc" | "usr/lib", "os-release") => return text(64 * 1024),
        _ => {}
    }
    if name == "copyright"
        && let Some(package) = dir.strip_prefix("usr/share/doc/")
        && !package.contains('/')
    {
        return text(MIB);
    }
    if name == "package.json" && is_node_module(dir) {
        return text(4 * MIB);
    }
    if (name == "METADATA" && dir.ends_with(".dist-info"))
        || (name == "PKG-INFO" && dir.ends_with(".egg-info"))
        || (name.ends_with(".egg-info") && dir.contains("-packages"))
    {
        return text(4 * MIB);
    }
    if name.ends_with(".deps.json") {
        return text(16 * MIB);
    }
    if is_java_archive(name) {
        return Some(Want::Jar);
    }
    (mode & 0o111 != 0).then_some(Want::Executable)
}

/// The extension of a file name (after the last `.`), if any.
pub(crate) fn extension(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(_, e)| e)
}

/// A jar, war or ear, whatever the case of its extension.
pub(crate) fn is_java_archive(name: &str) -> bool {
    extension(name).is_some_and(|e| {
        ["jar", "war", "ear"]
            .iter()
            .any(|j| e.eq_ignore_ascii_case(j))
    })
}

/// `…/node_modules/<name>` or `…/node_modules/@scope/<name>`.
fn is_node_module(dir: &str) -> bool {
    let mut parts = dir.rsplit('/');
    let (Some(name), Some(parent)) = (parts.next(), parts.next()) else {
        return false;
    };
    if name.is_empty() || name.starts_with('.') {
        return false;
    }
    parent == "node_modules" || (parent.starts_with('@') && parts.next() == Some("node_modules"))
}

/// What the catalogue kept of a file.
#[derive(Debug, Clone)]
pub(crate) enum Capture {
    /// The whole file.
    Text(Arc<[u8]>),
    /// A file that exists, unread.
    Marker,
    /// Packages found inside it (a jar's, a binary's), locations not yet set.
    Found(Arc<Vec<Package>>),
}

/// Reads what `want` asks of a file of `size` bytes at `path` from `reader`.
pub(crate) fn capture(
    path: &str,
    want: Want,
    size: u64,
    reader: &mut dyn Read,
) -> Result<Option<Capture>> {
    let io = |e| SbomError::io(format!("/{path}"), e);
    match want {
        Want::Text { limit } => {
            if size > limit {
                return Err(SbomError::FileTooLarge {
                    path: format!("/{path}"),
                    size,
                    limit,
                });
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            reader.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
            if bytes.len() as u64 > limit {
                return Err(SbomError::FileTooLarge {
                    path: format!("/{path}"),
                    size: bytes.len() as u64,
                    limit,
                });
            }
            Ok(Some(Capture::Text(bytes.into())))
        }
        Want::Marker => Ok(Some(Capture::Marker)),
        Want::Jar => {
            if size > JAR_LIMIT {
                return Err(SbomError::FileTooLarge {
                    path: format!("/{path}"),
                    size,
                    limit: JAR_LIMIT,
                });
            }
            let found = crate::catalog::java::read_jar(path, reader)?;
            Ok((!found.is_empty()).then(|| Capture::Found(Arc::new(found))))
        }
        Want::Executable => {
            let found = crate::binary::scan(path, reader)?;
            Ok((!found.is_empty()).then(|| Capture::Found(Arc::new(found))))
        }
    }
}

/// A file system entry the catalogue keeps.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    File(Capture),
    Symlink(String),
}

/// One change a layer makes, in the layer's order.
#[derive(Debug)]
pub(crate) enum Change {
    /// `.wh.<name>`: the path and everything under it, from the layers below, is gone.
    Whiteout(String),
    /// `.wh..wh..opq`: everything under the directory, from the layers below, is gone.
    Opaque(String),
    /// A file or symlink the catalogue keeps.
    Put(String, Node),
    /// A hard link to an earlier entry.
    Link { path: String, target: String },
    /// Any other non-directory entry: it hides what was at its path.
    Hide(String),
    /// A directory: it replaces a file or symlink at its path, and merges with a directory.
    Dir(String),
}

/// What one layer changes, read by [`crate::layer::read_layer`] or a directory walk.
#[derive(Debug, Default)]
pub struct LayerChanges {
    pub(crate) changes: Vec<Change>,
}

/// The merged filesystem.
#[derive(Debug, Default)]
pub struct Filesystem {
    nodes: BTreeMap<String, Node>,
}

impl Filesystem {
    /// Applies one layer on top of what is there: its whiteouts first (they only ever concern the
    /// layers below), then its entries in order.
    pub fn apply(&mut self, layer: LayerChanges) {
        let (deletions, entries): (Vec<_>, Vec<_>) = layer
            .changes
            .into_iter()
            .partition(|c| matches!(c, Change::Whiteout(_) | Change::Opaque(_)));
        for change in deletions {
            match change {
                Change::Whiteout(path) => {
                    self.nodes.remove(&path);
                    self.remove_under(&path);
                }
                Change::Opaque(dir) => self.remove_under(&dir),
                _ => {}
            }
        }
        for change in entries {
            match change {
                Change::Put(path, node) => {
                    self.remove_under(&path);
                    self.nodes.insert(path, node);
                }
                Change::Link { path, target } => match self.nodes.get(&target).cloned() {
                    Some(node) => {
                        self.nodes.insert(path, node);
                    }
                    None => {
                        self.nodes.remove(&path);
                    }
                },
                Change::Hide(path) => {
                    self.nodes.remove(&path);
                    self.remove_under(&path);
                }
                Change::Dir(path) => {
                    self.nodes.remove(&path);
                }
                Change::Whiteout(_) | Change::Opaque(_) => {}
            }
        }
    }

    fn remove_under(&mut self, dir: &str) {
        let prefix = format!("{dir}/");
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for path in doomed {
            self.nodes.remove(&path);
        }
    }

    /// Every kept file (not symlinks), in path order.
    pub(crate) fn files(&self) -> impl Iterator<Item = (&str, &Capture)> {
        self.nodes.iter().filter_map(|(path, node)| match node {
            Node::File(capture) => Some((path.as_str(), capture)),
            Node::Symlink(_) => None,
        })
    }

    /// The file at `path`, following symlinks (in the last component and in its parents) inside
    /// the image, never out of it.
    pub(crate) fn resolve(&self, path: &str) -> Option<&Capture> {
        let canonical = self.canonical(path)?;
        match self.nodes.get(&canonical)? {
            Node::File(capture) => Some(capture),
            Node::Symlink(_) => None,
        }
    }

    /// `path` with every symlink along it replaced by its target (`..` clamped at the root, as
    /// the kernel does inside a chroot). `None` on a loop.
    pub(crate) fn canonical(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = components(path).rev().map(str::to_owned).collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                done.pop();
                continue;
            }
            done.push(part);
            let here = done.join("/");
            if let Some(Node::Symlink(target)) = self.nodes.get(&here) {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return None;
                }
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                pending.extend(components(target).rev().map(str::to_owned));
            }
        }
        Some(done.join("/"))
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty() && *p != ".")
}

/// A path from an archive or a walk, as the catalogue keys it: no leading `/` or `./`, no `.`
/// components, `..` clamped at the root.
pub(crate) fn normalise(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in components(path) {
        if part == ".." {
            out.pop();
        } else {
            out.push(part);
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Node {
        Node::File(Capture::Text(s.as_bytes().into()))
    }

    fn content(fs: &Filesystem, path: &str) -> Option<String> {
        match fs.resolve(path)? {
            Capture::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers_only() {
        let mut fs = Filesystem::default();
        fs.apply(LayerChanges {
            changes: vec![
                Change::Put("a/one".into(), text("1")),
                Change::Put("a/two".into(), text("2")),
                Change::Put("b/three".into(), text("3")),
                Change::Put("c".into(), text("c")),
            ],
        });
        fs.apply(LayerChanges {
            changes: vec![
                // the layer's own new file comes before its opaque marker: it survives
                Change::Put("a/new".into(), text("n")),
                Change::Opaque("a".into()),
                Change::Whiteout("b".into()),
                Change::Hide("c".into()),
            ],
        });
        assert_eq!(content(&fs, "a/one"), None);
        assert_eq!(content(&fs, "a/two"), None);
        assert_eq!(content(&fs, "a/new").as_deref(), Some("n"));
        assert_eq!(content(&fs, "b/three"), None);
        assert_eq!(content(&fs, "c"), None);
    }

    #[test]
    fn symlinks_resolve_inside_the_image() {
        let mut fs = Filesystem::default();
        fs.apply(LayerChanges {
            changes: vec![
                Change::Put("usr/lib/os-release".into(), text("ID=debian")),
                Change::Put(
                    "etc/os-release".into(),
                    Node::Symlink("../usr/lib/os-release".into()),
                ),
                Change::Put("lib".into(), Node::Symlink("usr/lib".into())),
                Change::Put(
                    "escape".into(),
                    Node::Symlink("../../../../usr/lib/os-release".into()),
                ),
                Change::Put("loop".into(), Node::Symlink("loop".into())),
            ],
        });
        assert_eq!(content(&fs, "etc/os-release").as_deref(), Some("ID=debian"));
        assert_eq!(content(&fs, "lib/os-release").as_deref(), Some("ID=debian"));
        assert_eq!(content(&fs, "escape").as_deref(), Some("ID=debian"));
        assert_eq!(fs.canonical("loop"), None);
    }

    #[test]
    fn hard_links_copy_what_the_target_holds() {
        let mut fs = Filesystem::default();
        fs.apply(LayerChanges {
            changes: vec![
                Change::Put("bin/a".into(), text("x")),
                Change::Link {
                    path: "bin/b".into(),
                    target: "bin/a".into(),
                },
            ],
        });
        assert_eq!(content(&fs, "bin/b").as_deref(), Some("x"));
    }

    #[test]
    fn wanted_paths() {
        assert_eq!(
            want("var/lib/dpkg/status", 0o644),
            Some(Want::Text { limit: 64 * MIB })
        );
        assert!(want("var/lib/dpkg/status.d/base", 0o644).is_some());
        assert_eq!(want("var/lib/dpkg/status.d/base.md5sums", 0o644), None);
        assert!(want("app/node_modules/left-pad/package.json", 0o644).is_some());
        assert!(want("app/node_modules/@babel/core/package.json", 0o644).is_some());
        assert_eq!(want("app/package.json", 0o644), None);
        assert_eq!(want("app/node_modules/x/lib/package.json", 0o644), None);
        assert!(
            want(
                "usr/lib/python3/dist-packages/requests-2.28.1.egg-info",
                0o644
            )
            .is_some()
        );
        assert!(
            want(
                "usr/lib/python3.11/site-packages/a-1.dist-info/METADATA",
                0o644
            )
            .is_some()
        );
        assert_eq!(want("usr/share/java/x.JAR", 0o644), Some(Want::Jar));
        assert_eq!(want("usr/bin/ls", 0o755), Some(Want::Executable));
        assert_eq!(want("etc/passwd", 0o644), None);
        assert_eq!(want("var/lib/rpm/Packages", 0o644), Some(Want::Marker));
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalise("./usr//bin/./ls"), "usr/bin/ls");
        assert_eq!(normalise("/../../etc/passwd"), "etc/passwd");
        assert_eq!(normalise("a/b/../c"), "a/c");
    }
}
