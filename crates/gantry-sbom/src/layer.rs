//! Layers as tar streams (gzip, zstd or uncompressed, told apart by their first bytes): each entry
//! becomes a [`Change`]; the files the catalogue wants are read as they stream past.

use std::io::{BufRead, BufReader, Read};

use crate::error::{Result, SbomError};
use crate::fs::{self, Change, LayerChanges, Node};

/// Reads one layer. `name` names it in errors (its digest); `limit` caps the decompressed bytes.
pub fn read_layer(name: &str, reader: impl Read, limit: u64) -> Result<LayerChanges> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered
        .fill_buf()
        .map_err(|e| SbomError::io(format!("layer {name}"), e))?;
    let decompressed: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| SbomError::io(format!("layer {name}"), e))?,
        )
    } else {
        Box::new(buffered)
    };
    let capped = Capped {
        inner: decompressed,
        left: limit,
        exceeded: false,
    };
    let mut archive = tar::Archive::new(capped);
    let result = read_entries(name, &mut archive);
    if archive.into_inner().exceeded {
        return Err(SbomError::LayerTooLarge {
            layer: name.to_owned(),
            limit,
        });
    }
    result
}

fn read_entries<R: Read>(name: &str, archive: &mut tar::Archive<R>) -> Result<LayerChanges> {
    let bad = |e: std::io::Error| SbomError::BadLayer {
        layer: name.to_owned(),
        reason: e.to_string(),
    };
    let mut changes = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let path = fs::normalise(&raw);
        if path.is_empty() {
            continue;
        }
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", &path));
        if file == ".wh..wh..opq" {
            changes.push(Change::Opaque(dir.to_owned()));
            continue;
        }
        if let Some(hidden) = file.strip_prefix(".wh.") {
            let hidden = if dir.is_empty() {
                hidden.to_owned()
            } else {
                format!("{dir}/{hidden}")
            };
            changes.push(Change::Whiteout(hidden));
            continue;
        }
        let header = entry.header();
        let kind = header.entry_type();
        match kind {
            tar::EntryType::Directory => changes.push(Change::Dir(path)),
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                changes.push(Change::Put(path, Node::Symlink(target)));
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .map(|t| fs::normalise(&t.to_string_lossy()))
                    .unwrap_or_default();
                changes.push(Change::Link { path, target });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = header.mode().unwrap_or(0);
                let size = entry.size();
                match fs::want(&path, mode) {
                    Some(want) => match fs::capture(&path, want, size, &mut entry)? {
                        Some(capture) => changes.push(Change::Put(path, Node::File(capture))),
                        None => changes.push(Change::Hide(path)),
                    },
                    None => changes.push(Change::Hide(path)),
                }
            }
            _ => changes.push(Change::Hide(path)),
        }
    }
    Ok(LayerChanges { changes })
}

/// Stops reading after `left` bytes and remembers that it did.
struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                self.exceeded = true;
                return Err(std::io::Error::other("decompressed size limit reached"));
            }
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}
