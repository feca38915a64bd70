//! Go and Rust binaries, read as they stream past, without holding the binary.
//!
//! - Go (1.18 and later) writes its build information inline after the 16-byte-aligned magic
//!   `\xff Go buildinf:`; gantry scans for it in the stream and keeps the 1 MiB after it.
//! - cargo-auditable puts zlib-compressed JSON in the ELF section `.dep-v0`. Section contents
//!   that are not loaded (`.dep-v0`, `.comment`, the section name table) lie after the last
//!   `PT_LOAD` segment, and the section header table is at `e_shoff` (known from the first 64
//!   bytes); gantry keeps the first 4 MiB after the last segment and the last 1 MiB before the
//!   table through the end, then reads the sections from those windows.

use std::io::Read;

use crate::error::{Result, SbomError};
use crate::package::Package;

const GO_MAGIC: &[u8] = b"\xff Go buildinf:";
const GO_KEEP: usize = 1024 * 1024;
const AFTER_LOAD: u64 = 4 * 1024 * 1024;
const BEFORE_SECTIONS: u64 = 1024 * 1024;
const HEAD: usize = 64 * 1024;
/// The JSON cargo-auditable embeds, decompressed, at most (its own default limit is 8 MiB).
const AUDIT_JSON_LIMIT: u64 = 8 * 1024 * 1024;

/// What the ELF header says about where things are.
#[derive(Debug, Clone, Copy)]
struct Elf {
    is64: bool,
    little: bool,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
    load_end: Option<u64>,
}

fn read_uint(bytes: &[u8], at: usize, width: usize, little: bool) -> Option<u64> {
    let slice = bytes.get(at..at + width)?;
    let mut value = 0u64;
    for i in 0..width {
        let byte = if little {
            slice[width - 1 - i]
        } else {
            slice[i]
        };
        value = (value << 8) | u64::from(byte);
    }
    Some(value)
}

fn parse_elf(head: &[u8]) -> Option<Elf> {
    if !head.starts_with(b"\x7fELF") {
        return None;
    }
    let is64 = match head.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match head.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let u = |at, width| read_uint(head, at, width, little);
    let (phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx) = if is64 {
        (
            u(32, 8)?,
            u(40, 8)?,
            u(54, 2)?,
            u(56, 2)?,
            u(58, 2)?,
            u(60, 2)?,
            u(62, 2)?,
        )
    } else {
        (
            u(28, 4)?,
            u(32, 4)?,
            u(42, 2)?,
            u(44, 2)?,
            u(46, 2)?,
            u(48, 2)?,
            u(50, 2)?,
        )
    };
    let mut load_end = None;
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).ok()?;
        let Some(kind) = u(at, 4) else {
            load_end = None;
            break;
        };
        if kind != 1 {
            continue;
        }
        let (offset, filesz) = if is64 {
            (u(at + 8, 8), u(at + 32, 8))
        } else {
            (u(at + 4, 4), u(at + 16, 4))
        };
        let (Some(offset), Some(filesz)) = (offset, filesz) else {
            load_end = None;
            break;
        };
        load_end = Some(load_end.unwrap_or(0).max(offset + filesz));
    }
    Some(Elf {
        is64,
        little,
        shoff,
        shentsize,
        shnum,
        shstrndx,
        load_end,
    })
}

/// Byte ranges of the file that were kept.
#[derive(Default)]
struct Windows {
    ranges: Vec<(u64, Vec<u8>)>,
}

impl Windows {
    fn get(&self, offset: u64, len: u64) -> Option<&[u8]> {
        self.ranges.iter().find_map(|(start, bytes)| {
            let from = usize::try_from(offset.checked_sub(*start)?).ok()?;
            let to = from.checked_add(usize::try_from(len).ok()?)?;
            bytes.get(from..to)
        })
    }
}

/// Scans the binary at `path`: packages from Go build information and cargo-auditable data, with
/// no location set; nothing when it is neither (or not ELF: only the head is read then).
pub(crate) fn scan(path: &str, reader: &mut dyn Read) -> Result<Vec<Package>> {
    let io = |e| SbomError::io(format!("/{path}"), e);
    let mut head = Vec::with_capacity(HEAD);
    reader
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let Some(elf) = parse_elf(&head) else {
        return Ok(Vec::new());
    };
    // The windows to keep: after the last loaded byte, and before the section headers.
    let mut wanted: Vec<(u64, u64)> = Vec::new();
    if let Some(end) = elf.load_end {
        wanted.push((end, end + AFTER_LOAD));
    }
    let table_end = elf.shoff + elf.shnum * elf.shentsize;
    if elf.shoff > 0 {
        wanted.push((
            elf.shoff.saturating_sub(BEFORE_SECTIONS),
            table_end.max(elf.shoff),
        ));
    }
    let mut windows = Windows::default();
    for &(start, _) in &wanted {
        windows.ranges.push((start, Vec::new()));
    }
    let mut go: Option<Vec<u8>> = None;
    let mut offset = 0u64;
    let mut chunk = head;
    let mut carry: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        // Keep what falls into the windows.
        for (i, &(start, end)) in wanted.iter().enumerate() {
            let chunk_end = offset + chunk.len() as u64;
            if chunk_end <= start || offset >= end {
                continue;
            }
            let from = usize::try_from(start.saturating_sub(offset)).unwrap_or(0);
            let to = usize::try_from(end.min(chunk_end) - offset).unwrap_or(chunk.len());
            windows.ranges[i].1.extend_from_slice(&chunk[from..to]);
        }
        // Go build information: the magic at a 16-byte-aligned file offset.
        match &mut go {
            Some(kept) if kept.len() < GO_KEEP => {
                let take = (GO_KEEP - kept.len()).min(chunk.len());
                kept.extend_from_slice(&chunk[..take]);
            }
            Some(_) => {}
            None => {
                let base = offset - carry.len() as u64;
                let mut joined = std::mem::take(&mut carry);
                joined.extend_from_slice(&chunk);
                for at in memchr::memmem::find_iter(&joined, GO_MAGIC) {
                    if (base + at as u64).is_multiple_of(16) {
                        let end = (at + GO_KEEP).min(joined.len());
                        go = Some(joined[at..end].to_vec());
                        break;
                    }
                }
                if go.is_none() {
                    let keep = joined.len().min(GO_MAGIC.len() - 1);
                    carry = joined[joined.len() - keep..].to_vec();
                }
            }
        }
        offset += chunk.len() as u64;
        let n = reader.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        chunk = buffer[..n].to_vec();
    }
    let mut found = Vec::new();
    if let Some(info) = go {
        found.extend(crate::catalog::golang::from_buildinfo(path, &info));
    }
    if let Some(json) = section(&elf, &windows, ".dep-v0") {
        found.extend(crate::catalog::from_audit_data(path, json)?);
    }
    Ok(found)
}

/// The contents of the section called `name`, when it and the tables lie inside the windows.
fn section<'a>(elf: &Elf, windows: &'a Windows, name: &str) -> Option<&'a [u8]> {
    if elf.shoff == 0 || elf.shnum == 0 {
        return None;
    }
    let header = |index: u64| -> Option<(u64, u64, u64)> {
        let bytes = windows.get(elf.shoff + index * elf.shentsize, elf.shentsize)?;
        let u = |at, width| read_uint(bytes, at, width, elf.little);
        if elf.is64 {
            Some((u(0, 4)?, u(24, 8)?, u(32, 8)?))
        } else {
            Some((u(0, 4)?, u(16, 4)?, u(20, 4)?))
        }
    };
    let (_, names_at, names_size) = header(elf.shstrndx)?;
    let names = windows.get(names_at, names_size)?;
    for index in 0..elf.shnum {
        let Some((name_offset, offset, size)) = header(index) else {
            continue;
        };
        let Some(rest) = names.get(usize::try_from(name_offset).ok()?..) else {
            continue;
        };
        let end = memchr::memchr(0, rest).unwrap_or(rest.len());
        if &rest[..end] == name.as_bytes() {
            return windows.get(offset, size);
        }
    }
    None
}

/// zlib-decompresses at most [`AUDIT_JSON_LIMIT`] bytes.
pub(crate) fn inflate_audit_data(path: &str, compressed: &[u8]) -> Result<Vec<u8>> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(AUDIT_JSON_LIMIT + 1)
        .read_to_end(&mut json)
        .map_err(|e| SbomError::Database {
            path: format!("/{path}"),
            reason: format!("cargo-auditable data does not decompress: {e}"),
        })?;
    if json.len() as u64 > AUDIT_JSON_LIMIT {
        return Err(SbomError::FileTooLarge {
            path: format!("/{path} (cargo-auditable data)"),
            size: json.len() as u64,
            limit: AUDIT_JSON_LIMIT,
        });
    }
    Ok(json)
}
