//! RPM packages from the sqlite database (`rpmdb.sqlite` in `/usr/lib/sysimage/rpm` or
//! `/var/lib/rpm`): each row of `Packages` is one package's header blob, parsed here (the
//! header's index and data store, big-endian, without the on-disk magic).
//!
//! Berkeley DB (`Packages`) and ndb (`Packages.db`) databases are refused with a clear error:
//! there is no way to write one here to test a reader against, and an SBOM that silently leaves
//! out every OS package would be wrong.

use std::collections::BTreeMap;

use super::Found;
use crate::error::{Result, SbomError};
use crate::fs::{Capture, Filesystem};
use crate::os::OsRelease;
use crate::package::{Ecosystem, Package};
use crate::purl;

const DIRS: [&str; 2] = ["usr/lib/sysimage/rpm", "var/lib/rpm"];

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const LICENSE: u32 = 1014;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;
const PROVIDENAME: u32 = 1047;
const REQUIRENAME: u32 = 1049;
const DIRINDEXES: u32 = 1116;
const BASENAMES: u32 = 1117;
const DIRNAMES: u32 = 1118;

/// A tag's value, as far as gantry reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Strings(Vec<String>),
    Ints(Vec<u32>),
}

/// Parses one header blob (`il`, `dl`, the index entries, the data store). Malformed headers are
/// errors, never panics.
pub(crate) fn parse_header(blob: &[u8]) -> Result<BTreeMap<u32, Value>, String> {
    let be32 = |at: usize| -> Result<u32, String> {
        blob.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("truncated at byte {at}"))
    };
    let entries = be32(0)? as usize;
    let data_len = be32(4)? as usize;
    let data_start = 8usize
        .checked_add(entries.checked_mul(16).ok_or("index too large")?)
        .ok_or("index too large")?;
    let data = blob
        .get(data_start..data_start.checked_add(data_len).ok_or("data too large")?)
        .ok_or_else(|| {
            format!(
                "{entries} entries and {data_len} data bytes do not fit in {} bytes",
                blob.len()
            )
        })?;
    let mut out = BTreeMap::new();
    for i in 0..entries {
        let at = 8 + i * 16;
        let (tag, kind, offset, count) = (
            be32(at)?,
            be32(at + 4)?,
            be32(at + 8)? as usize,
            be32(at + 12)? as usize,
        );
        let wanted = matches!(
            tag,
            NAME | VERSION
                | RELEASE
                | EPOCH
                | LICENSE
                | ARCH
                | SOURCERPM
                | PROVIDENAME
                | REQUIRENAME
                | DIRINDEXES
                | BASENAMES
                | DIRNAMES
        );
        if !wanted {
            continue;
        }
        let rest = data
            .get(offset..)
            .ok_or_else(|| format!("tag {tag} points outside the data"))?;
        let value = match kind {
            // STRING, STRING_ARRAY, I18NSTRING
            6 | 8 | 9 => {
                let count = if kind == 6 { 1 } else { count };
                let mut strings = Vec::with_capacity(count.min(65_536));
                let mut pos = 0;
                for _ in 0..count {
                    let tail = rest
                        .get(pos..)
                        .ok_or_else(|| format!("tag {tag}: string outside the data"))?;
                    let end = memchr::memchr(0, tail)
                        .ok_or_else(|| format!("tag {tag}: unterminated string"))?;
                    strings.push(String::from_utf8_lossy(&tail[..end]).into_owned());
                    pos += end + 1;
                }
                Value::Strings(strings)
            }
            // INT32
            4 => {
                let bytes = rest
                    .get(..count.checked_mul(4).ok_or("count too large")?)
                    .ok_or_else(|| format!("tag {tag}: integers outside the data"))?;
                Value::Ints(
                    bytes
                        .chunks_exact(4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                )
            }
            _ => continue,
        };
        out.insert(tag, value);
    }
    Ok(out)
}

fn string(header: &BTreeMap<u32, Value>, tag: u32) -> Option<&str> {
    match header.get(&tag)? {
        Value::Strings(s) => s.first().map(String::as_str),
        Value::Ints(_) => None,
    }
}

fn strings(header: &BTreeMap<u32, Value>, tag: u32) -> &[String] {
    match header.get(&tag) {
        Some(Value::Strings(s)) => s,
        _ => &[],
    }
}

/// A Berkeley DB or ndb database without an sqlite one beside it: an error, never a skip.
fn refuse_legacy(fs: &Filesystem) -> Result<()> {
    for dir in DIRS {
        for legacy in ["Packages", "Packages.db"] {
            let path = format!("{dir}/{legacy}");
            if matches!(fs.resolve(&path), Some(Capture::Marker))
                && fs.resolve(&format!("{dir}/rpmdb.sqlite")).is_none()
            {
                return Err(SbomError::Database {
                    path: format!("/{path}"),
                    reason: "an rpm database in Berkeley DB or ndb format, which gantry does not read (only rpmdb.sqlite, the format of RHEL 9, Fedora 33 and later, openSUSE and Amazon Linux 2023)".into(),
                });
            }
        }
    }
    Ok(())
}

/// The sqlite database's path and its header blobs, when there is one.
fn database_blobs(fs: &Filesystem) -> Result<Option<(String, Vec<Vec<u8>>)>> {
    let Some((path, Capture::Text(bytes))) = DIRS
        .iter()
        .map(|d| format!("{d}/rpmdb.sqlite"))
        .find_map(|p| fs.resolve(&p).map(|c| (p, c)))
    else {
        return Ok(None);
    };
    let wal = match fs.resolve(&format!("{path}-wal")) {
        Some(Capture::Text(wal)) if !wal.is_empty() => Some(wal),
        _ => None,
    };
    let blobs = match wal {
        None => read_blobs(bytes),
        Some(wal) => read_blobs_with_wal(bytes, wal),
    }
    .map_err(|e| SbomError::Database {
        path: format!("/{path}"),
        reason: format!("not a readable sqlite rpm database: {e}"),
    })?;
    Ok(Some((path, blobs)))
}

pub(crate) fn catalog(fs: &Filesystem, os: Option<&OsRelease>) -> Result<Found> {
    let mut found = Found::default();
    refuse_legacy(fs)?;
    let Some((path, blobs)) = database_blobs(fs)? else {
        return Ok(found);
    };
    let database = |reason: String| SbomError::Database {
        path: format!("/{path}"),
        reason,
    };
    let namespace = os
        .and_then(|o| o.id.clone())
        .unwrap_or_else(|| "redhat".into());
    let distro = purl::distro(os);
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    let mut requires: Vec<(usize, Vec<String>)> = Vec::new();
    for blob in blobs {
        let header = parse_header(&blob)
            .map_err(|e| database(format!("a package header is malformed: {e}")))?;
        let (Some(name), Some(version)) = (string(&header, NAME), string(&header, VERSION)) else {
            continue;
        };
        // gpg-pubkey "packages" are the keys rpm trusts, not software.
        if name == "gpg-pubkey" {
            continue;
        }
        let release = string(&header, RELEASE);
        let full = match release {
            Some(r) => format!("{version}-{r}"),
            None => version.to_owned(),
        };
        let epoch = match header.get(&EPOCH) {
            Some(Value::Ints(e)) => e.first().map(u32::to_string),
            _ => None,
        };
        let arch = string(&header, ARCH).unwrap_or("");
        let source = string(&header, SOURCERPM).unwrap_or("");
        let mut qualifiers = vec![("arch", arch)];
        if let Some(epoch) = &epoch {
            qualifiers.push(("epoch", epoch));
        }
        if let Some(distro) = &distro {
            qualifiers.push(("distro", distro));
        }
        if !source.is_empty() {
            qualifiers.push(("upstream", source));
        }
        let Some(purl) = purl::build("rpm", Some(&namespace), name, Some(&full), &qualifiers)
        else {
            continue;
        };
        let mut package = Package::new(Ecosystem::Rpm, name, Some(&full), purl.clone()).at(&path);
        package.license(string(&header, LICENSE));
        if !arch.is_empty() {
            package.properties.insert("gantry:arch".into(), arch.into());
        }
        by_name.insert(name.to_owned(), purl.clone());
        for provided in strings(&header, PROVIDENAME) {
            by_name
                .entry(provided.clone())
                .or_insert_with(|| purl.clone());
        }
        let dirs = strings(&header, DIRNAMES);
        if let Some(Value::Ints(indexes)) = header.get(&DIRINDEXES) {
            for (base, index) in strings(&header, BASENAMES).iter().zip(indexes) {
                if let Some(dir) = dirs.get(*index as usize) {
                    found.owned.push((format!("{dir}{base}"), purl.clone()));
                }
            }
        }
        requires.push((found.packages.len(), strings(&header, REQUIRENAME).to_vec()));
        found.packages.push(package);
    }
    found.link_by_name(&by_name, requires);
    Ok(found)
}

fn select_blobs(connection: &rusqlite::Connection) -> Result<Vec<Vec<u8>>, rusqlite::Error> {
    let mut statement = connection.prepare("SELECT blob FROM Packages ORDER BY hnum")?;
    let rows = statement.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    rows.collect()
}

/// The header blobs when the database has a write-ahead log not yet checkpointed: both files are
/// copied into a private temporary directory and opened there, so sqlite applies the log (to the
/// copy; the image is never touched).
fn read_blobs_with_wal(bytes: &[u8], wal: &[u8]) -> Result<Vec<Vec<u8>>, rusqlite::Error> {
    let io = |e: std::io::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    let dir = tempfile::tempdir().map_err(io)?;
    let database = dir.path().join("rpmdb.sqlite");
    std::fs::write(&database, bytes).map_err(io)?;
    std::fs::write(dir.path().join("rpmdb.sqlite-wal"), wal).map_err(io)?;
    let connection = rusqlite::Connection::open(&database)?;
    select_blobs(&connection)
}

/// The header blobs of the `Packages` table, in row order, from the database's bytes (read in
/// memory, read-only: nothing is written to disk).
fn read_blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, rusqlite::Error> {
    let mut connection = rusqlite::Connection::open_in_memory()?;
    // A database in WAL mode (header bytes 18 and 19 are 2) cannot be opened from memory; the
    // copy is marked as a rollback-journal database, which changes nothing in what it holds.
    let (head, tail) = bytes.split_at(bytes.len().min(20));
    let mut patched = head.to_vec();
    if patched.len() == 20 && patched[18] == 2 && patched[19] == 2 {
        patched[18] = 1;
        patched[19] = 1;
    }
    connection.deserialize_read_exact(
        rusqlite::MAIN_DB,
        std::io::Read::chain(patched.as_slice(), tail),
        bytes.len(),
        true,
    )?;
    select_blobs(&connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn headers_never_panic(blob in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_header(&blob);
        }
    }

    #[test]
    fn a_header_that_claims_more_than_it_holds_is_an_error() {
        let mut blob = vec![0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        blob.extend([0; 16]);
        assert!(parse_header(&blob).is_err());
    }
}
