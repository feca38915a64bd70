//! Content-addressed storage: blobs (manifests are blobs too) and per-repository links and tags.
//! In memory, or on disk with the repository index written through on every change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gantry_oci::Digest;
use serde::{Deserialize, Serialize};

/// What the registry remembers about a stored manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestInfo {
    pub media_type: String,
    pub size: u64,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Repository {
    pub blobs: BTreeSet<Digest>,
    pub manifests: BTreeMap<Digest, ManifestInfo>,
    pub tags: BTreeMap<String, Digest>,
}

/// Where blob bytes live.
#[derive(Debug)]
pub enum Blobs {
    Memory(HashMap<Digest, Bytes>),
    Disk(PathBuf),
}

#[derive(Debug)]
pub struct Store {
    pub repositories: BTreeMap<String, Repository>,
    pub blobs: Blobs,
    /// Where uploads in progress are spooled (bounded memory for any blob size).
    pub spool: PathBuf,
    _spool_guard: Option<tempfile::TempDir>,
}

impl Store {
    pub fn memory() -> std::io::Result<Self> {
        let spool = tempfile::Builder::new()
            .prefix("gantry-registry-uploads-")
            .tempdir()?;
        Ok(Self {
            repositories: BTreeMap::new(),
            blobs: Blobs::Memory(HashMap::new()),
            spool: spool.path().to_owned(),
            _spool_guard: Some(spool),
        })
    }

    /// Opens (or creates) storage in `dir`, reloading what an earlier run stored there.
    pub fn disk(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("blobs"))?;
        std::fs::create_dir_all(dir.join("uploads"))?;
        let repositories = match std::fs::read(dir.join("repositories.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            repositories,
            blobs: Blobs::Disk(dir.to_owned()),
            spool: dir.join("uploads"),
            _spool_guard: None,
        })
    }

    fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
        dir.join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        match &self.blobs {
            Blobs::Memory(map) => map.contains_key(digest),
            Blobs::Disk(dir) => Self::blob_path(dir, digest).is_file(),
        }
    }

    /// Stores a verified spooled file as the blob `digest`.
    pub fn commit_spooled(&mut self, spooled: &Path, digest: &Digest) -> std::io::Result<()> {
        match &mut self.blobs {
            Blobs::Memory(map) => {
                let bytes = std::fs::read(spooled)?;
                std::fs::remove_file(spooled)?;
                map.insert(digest.clone(), Bytes::from(bytes));
            }
            Blobs::Disk(dir) => {
                let path = Self::blob_path(dir, digest);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::rename(spooled, path)?;
            }
        }
        Ok(())
    }

    pub fn put_small(&mut self, digest: &Digest, bytes: Bytes) -> std::io::Result<()> {
        match &mut self.blobs {
            Blobs::Memory(map) => {
                map.insert(digest.clone(), bytes);
            }
            Blobs::Disk(dir) => {
                let path = Self::blob_path(dir, digest);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(path, bytes)?;
            }
        }
        Ok(())
    }

    /// The bytes of a small blob (a manifest).
    pub fn read_small(&self, digest: &Digest) -> std::io::Result<Bytes> {
        match &self.blobs {
            Blobs::Memory(map) => map
                .get(digest)
                .cloned()
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)),
            Blobs::Disk(dir) => std::fs::read(Self::blob_path(dir, digest)).map(Bytes::from),
        }
    }

    /// A blob's bytes in memory, or the file to stream them from.
    pub fn blob_source(&self, digest: &Digest) -> Option<BlobSource> {
        match &self.blobs {
            Blobs::Memory(map) => map.get(digest).cloned().map(BlobSource::Bytes),
            Blobs::Disk(dir) => {
                let path = Self::blob_path(dir, digest);
                path.is_file().then_some(BlobSource::File(path))
            }
        }
    }

    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        match &self.blobs {
            Blobs::Memory(map) => map.get(digest).map(|b| b.len() as u64),
            Blobs::Disk(dir) => std::fs::metadata(Self::blob_path(dir, digest))
                .ok()
                .map(|m| m.len()),
        }
    }

    /// Writes the repository index through to disk (atomically), in disk mode.
    pub fn persist(&self) -> std::io::Result<()> {
        if let Blobs::Disk(dir) = &self.blobs {
            let tmp = dir.join("repositories.json.tmp");
            std::fs::write(
                &tmp,
                serde_json::to_vec(&self.repositories).map_err(std::io::Error::other)?,
            )?;
            std::fs::rename(tmp, dir.join("repositories.json"))?;
        }
        Ok(())
    }
}

pub enum BlobSource {
    Bytes(Bytes),
    File(PathBuf),
}
