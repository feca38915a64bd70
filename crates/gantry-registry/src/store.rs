//! Content-addressed storage: blobs (manifests are blobs too) as files, and per-repository links
//! and tags in memory, written through to disk on every change in disk mode.
//!
//! Two rules keep one repository from touching another's content. A blob file is created once and
//! never replaced: a commit hard-links the verified upload into place, which fails when the digest
//! is already there (the first copy stays, the second is dropped). And no file I/O happens under
//! the metadata lock, which guards only in-memory maps, so a large commit never stalls other
//! requests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// One repository: the blobs linked into it, its manifests and its tags.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Repository {
    pub blobs: BTreeSet<Digest>,
    pub manifests: BTreeMap<Digest, ManifestInfo>,
    pub tags: BTreeMap<String, Digest>,
}

/// Every repository by name.
pub type Repositories = BTreeMap<String, Repository>;

struct Meta {
    repositories: Repositories,
    /// Bumped on every change, so the disk index is never overwritten by an older snapshot.
    version: u64,
}

#[derive(Debug)]
pub struct Store {
    /// Holds `blobs/<algorithm>/<hex>` and `uploads/`.
    root: PathBuf,
    /// `repositories.json`, in disk mode.
    index: Option<PathBuf>,
    meta: Mutex<Meta>,
    /// The version last written to `index`.
    written: tokio::sync::Mutex<u64>,
    /// Removes the directory on drop, in temporary mode.
    temporary: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("repositories", &self.repositories.len())
            .field("version", &self.version)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store {
    /// Storage in a temporary directory, removed when the store is dropped: nothing is kept
    /// between runs, and blob bytes never sit in memory (a large push costs disk, not RSS).
    pub fn temporary() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("gantry-registry-")
            .tempdir()?;
        let mut store = Self::open(dir.path(), None)?;
        store.temporary = Some(dir);
        Ok(store)
    }

    /// Opens (or creates) storage in `dir`, reloading what an earlier run stored there. Uploads
    /// an earlier run left unfinished are removed: their sessions ended with that run.
    pub fn disk(dir: &Path) -> std::io::Result<Self> {
        let index = dir.join("repositories.json");
        let repositories = match std::fs::read(&index) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Repositories::new(),
            Err(e) => return Err(e),
        };
        let store = Self::open(dir, Some(index))?;
        lock(&store.meta).repositories = repositories;
        Ok(store)
    }

    fn open(dir: &Path, index: Option<PathBuf>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("blobs"))?;
        let uploads = dir.join("uploads");
        match std::fs::remove_dir_all(&uploads) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&uploads)?;
        Ok(Self {
            root: dir.to_owned(),
            index,
            meta: Mutex::new(Meta {
                repositories: Repositories::new(),
                version: 0,
            }),
            written: tokio::sync::Mutex::new(0),
            temporary: None,
        })
    }

    /// Where an upload session spools its bytes.
    pub fn spool_path(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    /// Reads the repositories under the lock (no I/O).
    pub fn read<R>(&self, f: impl FnOnce(&Repositories) -> R) -> R {
        f(&lock(&self.meta).repositories)
    }

    /// Changes the repositories under the lock (no I/O), then writes the index through to disk
    /// outside it.
    pub async fn change<R>(&self, f: impl FnOnce(&mut Repositories) -> R) -> std::io::Result<R> {
        let (result, snapshot) = {
            let mut meta = lock(&self.meta);
            let result = f(&mut meta.repositories);
            meta.version += 1;
            let snapshot = match self.index {
                Some(_) => Some((
                    meta.version,
                    serde_json::to_vec(&meta.repositories).map_err(std::io::Error::other)?,
                )),
                None => None,
            };
            (result, snapshot)
        };
        if let (Some(index), Some((version, bytes))) = (&self.index, snapshot) {
            let mut written = self.written.lock().await;
            if version > *written {
                let tmp = index.with_extension("json.tmp");
                tokio::fs::write(&tmp, bytes).await?;
                tokio::fs::rename(tmp, index).await?;
                *written = version;
            }
        }
        Ok(result)
    }

    /// Stores a verified spooled file as the blob `digest` and removes the spooled file. A blob
    /// that is already stored is kept as it is: content-addressed files are never replaced.
    pub async fn commit(&self, spooled: &Path, digest: &Digest) -> std::io::Result<()> {
        let target = self.blob_path(digest);
        let spooled = spooled.to_owned();
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // A hard link creates the name only if it does not exist yet (atomic, no overwrite).
            match std::fs::hard_link(&spooled, &target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            std::fs::remove_file(&spooled)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Stores a small blob (a manifest) held in memory.
    pub async fn put_small(&self, digest: &Digest, bytes: Bytes) -> std::io::Result<()> {
        let spooled = self.spool_path(&format!("small-{}", crate::api::new_id()));
        tokio::fs::write(&spooled, bytes).await?;
        let result = self.commit(&spooled, digest).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&spooled).await;
        }
        result
    }

    /// The bytes of a small blob (a manifest).
    pub async fn read_small(&self, digest: &Digest) -> std::io::Result<Bytes> {
        tokio::fs::read(self.blob_path(digest))
            .await
            .map(Bytes::from)
    }

    /// The file of a stored blob and its size; `None` when it is not stored.
    pub async fn blob_file(&self, digest: &Digest) -> Option<(PathBuf, u64)> {
        let path = self.blob_path(digest);
        let metadata = tokio::fs::metadata(&path).await.ok()?;
        metadata.is_file().then_some((path, metadata.len()))
    }
}
