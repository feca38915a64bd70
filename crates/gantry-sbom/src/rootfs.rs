//! A root filesystem in a directory (`--rootfs`): walked as one layer, symlinks not followed.

use std::path::Path;

use crate::error::{Result, SbomError};
use crate::fs::{self, Change, LayerChanges, Node};

/// Reads the directory tree under `root` as if it were one layer.
pub fn read_rootfs(root: &Path) -> Result<LayerChanges> {
    let mut changes = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| SbomError::io(dir.display().to_string(), e))?;
        let mut entries: Vec<_> = entries
            .collect::<std::io::Result<_>>()
            .map_err(|e| SbomError::io(dir.display().to_string(), e))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry
                .file_type()
                .map_err(|e| SbomError::io(entry.path().display().to_string(), e))?;
            if kind.is_dir() {
                stack.push((entry.path(), path));
            } else if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())
                    .map_err(|e| SbomError::io(entry.path().display().to_string(), e))?;
                changes.push(Change::Put(
                    path,
                    Node::Symlink(target.to_string_lossy().into_owned()),
                ));
            } else if kind.is_file() {
                use std::os::unix::fs::PermissionsExt as _;
                let metadata = entry
                    .metadata()
                    .map_err(|e| SbomError::io(entry.path().display().to_string(), e))?;
                let Some(want) = fs::want(&path, metadata.permissions().mode()) else {
                    continue;
                };
                let mut file = std::fs::File::open(entry.path())
                    .map_err(|e| SbomError::io(entry.path().display().to_string(), e))?;
                if let Some(capture) = fs::capture(&path, want, metadata.len(), &mut file)? {
                    changes.push(Change::Put(path, Node::File(capture)));
                }
            }
        }
    }
    Ok(LayerChanges { changes })
}

/// Reads `root`: the directory's layer applied to an empty filesystem.
pub fn rootfs(root: &Path) -> Result<fs::Filesystem> {
    let mut filesystem = fs::Filesystem::default();
    filesystem.apply(read_rootfs(root)?);
    Ok(filesystem)
}
