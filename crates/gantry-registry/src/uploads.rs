//! Upload sessions: one writer at a time, bounded in size, expiring when idle.
//!
//! A request that writes to a session (a PATCH, the final PUT) leases it: the session leaves the
//! table for the length of the request, so a second request on the same id is refused instead of
//! writing into the same file, and only the lease holder has the spool file open when it is hashed
//! and committed. A lease that is dropped without being returned (the client went away mid-body,
//! the body broke a limit) ends the session and removes its file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gantry_oci::digest::Hasher;
use sha2::Digest as _;

/// Limits on what uploads may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest blob (and so the largest upload) accepted.
    pub max_blob_size: u64,
    /// Bytes all unfinished uploads together may hold on disk.
    pub budget: u64,
    /// Unfinished uploads at once.
    pub max_sessions: usize,
    /// A session nobody wrote to for this long is removed with its file.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_blob_size: 8 << 30,
            budget: 32 << 30,
            max_sessions: 1024,
            idle_timeout: Duration::from_mins(15),
        }
    }
}

/// One unfinished upload.
pub struct Upload {
    pub repository: String,
    pub path: PathBuf,
    pub size: u64,
    /// SHA-256 of the bytes so far, so the commit need not read the file again.
    pub sha256: sha2::Sha256,
    touched: Instant,
}

impl Upload {
    /// The digest of everything written, with `like`'s algorithm (SHA-512 reads the file again).
    pub async fn digest_like(
        &self,
        like: &gantry_oci::Digest,
    ) -> std::io::Result<gantry_oci::Digest> {
        if like.algorithm() == "sha256" {
            return Ok(Hasher::Sha256(self.sha256.clone()).finish());
        }
        let path = self.path.clone();
        let like = like.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Read as _;
            let mut file = std::fs::File::open(path)?;
            let mut hasher = like.hasher();
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    return Ok(hasher.finish());
                }
                hasher.update(&buffer[..n]);
            }
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

enum Slot {
    Idle(Upload),
    /// Leased by a request in progress.
    Busy {
        repository: String,
    },
}

/// Why a session cannot be leased or grown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadError {
    Unknown,
    Busy,
    TooManySessions { limit: usize },
    TooLarge { limit: u64 },
    OverBudget { budget: u64 },
}

/// Every unfinished upload.
pub struct Uploads {
    slots: Mutex<HashMap<String, Slot>>,
    /// Bytes held by unfinished uploads.
    spooled: Mutex<u64>,
    pub limits: Limits,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Uploads {
    pub fn new(limits: Limits) -> Self {
        Self {
            slots: Mutex::default(),
            spooled: Mutex::new(0),
            limits,
        }
    }

    /// Opens a session for `repository` whose bytes go to `path` (created empty by the caller).
    pub fn open(&self, id: &str, repository: &str, path: PathBuf) -> Result<(), UploadError> {
        let mut slots = lock(&self.slots);
        if slots.len() >= self.limits.max_sessions {
            return Err(UploadError::TooManySessions {
                limit: self.limits.max_sessions,
            });
        }
        slots.insert(
            id.to_owned(),
            Slot::Idle(Upload {
                repository: repository.to_owned(),
                path,
                size: 0,
                sha256: sha2::Sha256::new(),
                touched: Instant::now(),
            }),
        );
        Ok(())
    }

    /// The size of `repository`'s session `id`, without leasing it.
    pub fn size(&self, id: &str, repository: &str) -> Result<u64, UploadError> {
        match lock(&self.slots).get(id) {
            Some(Slot::Idle(upload)) if upload.repository == repository => Ok(upload.size),
            Some(Slot::Busy { repository: owner }) if owner == repository => Err(UploadError::Busy),
            _ => Err(UploadError::Unknown),
        }
    }

    /// Takes `repository`'s session `id` for one request.
    pub fn lease(&self, id: &str, repository: &str) -> Result<Lease<'_>, UploadError> {
        let mut slots = lock(&self.slots);
        match slots.get(id) {
            Some(Slot::Idle(upload)) if upload.repository == repository => {}
            Some(Slot::Busy { repository: owner }) if owner == repository => {
                return Err(UploadError::Busy);
            }
            _ => return Err(UploadError::Unknown),
        }
        let busy = Slot::Busy {
            repository: repository.to_owned(),
        };
        let Some(Slot::Idle(upload)) = slots.insert(id.to_owned(), busy) else {
            return Err(UploadError::Unknown);
        };
        Ok(Lease {
            uploads: self,
            id: id.to_owned(),
            upload: Some(upload),
        })
    }

    /// Ends `repository`'s idle session `id` and removes its file.
    pub fn cancel(&self, id: &str, repository: &str) -> Result<(), UploadError> {
        drop(self.lease(id, repository)?);
        Ok(())
    }

    /// Ends every session idle for longer than the limit; returns how many.
    pub fn expire_idle(&self) -> usize {
        let now = Instant::now();
        let expired: Vec<String> = lock(&self.slots)
            .iter()
            .filter(|(_, slot)| {
                matches!(slot, Slot::Idle(u) if now.duration_since(u.touched) > self.limits.idle_timeout)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut count = 0;
        for id in expired {
            let repository = match lock(&self.slots).get(&id) {
                Some(Slot::Idle(upload)) => upload.repository.clone(),
                _ => continue,
            };
            if self.cancel(&id, &repository).is_ok() {
                count += 1;
            }
        }
        count
    }

    fn release_bytes(&self, bytes: u64) {
        let mut spooled = lock(&self.spooled);
        *spooled = spooled.saturating_sub(bytes);
    }
}

/// A session taken by one request. Return it with [`Lease::keep`]; dropped otherwise, it ends the
/// session and removes the file.
pub struct Lease<'a> {
    uploads: &'a Uploads,
    id: String,
    upload: Option<Upload>,
}

impl Lease<'_> {
    pub fn upload(&self) -> &Upload {
        self.upload
            .as_ref()
            .expect("a lease holds its upload until it ends")
    }

    /// Counts `chunk` (already written to the file) into the size, the hash and the budget.
    pub fn grew(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        let limits = self.uploads.limits;
        let upload = self.upload.as_mut().expect("a lease holds its upload");
        let n = chunk.len() as u64;
        if upload.size + n > limits.max_blob_size {
            return Err(UploadError::TooLarge {
                limit: limits.max_blob_size,
            });
        }
        {
            let mut spooled = lock(&self.uploads.spooled);
            if *spooled + n > limits.budget {
                return Err(UploadError::OverBudget {
                    budget: limits.budget,
                });
            }
            *spooled += n;
        }
        upload.size += n;
        upload.sha256.update(chunk);
        Ok(())
    }

    /// Checks that `n` more bytes would fit before they are read.
    pub fn fits(&self, n: u64) -> Result<(), UploadError> {
        let limits = self.uploads.limits;
        if self.upload().size.saturating_add(n) > limits.max_blob_size {
            return Err(UploadError::TooLarge {
                limit: limits.max_blob_size,
            });
        }
        Ok(())
    }

    /// Returns the session to the table, idle, for the next request.
    pub fn keep(mut self) {
        if let Some(mut upload) = self.upload.take() {
            upload.touched = Instant::now();
            lock(&self.uploads.slots).insert(self.id.clone(), Slot::Idle(upload));
        }
    }

    /// Ends the session, handing back its upload (whose file the caller now owns).
    pub fn finish(mut self) -> Upload {
        let upload = self.upload.take().expect("a lease holds its upload");
        lock(&self.uploads.slots).remove(&self.id);
        self.uploads.release_bytes(upload.size);
        upload
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            lock(&self.uploads.slots).remove(&self.id);
            self.uploads.release_bytes(upload.size);
            let _ = std::fs::remove_file(&upload.path);
        }
    }
}
