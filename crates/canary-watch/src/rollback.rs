//! The rollback of a registry tag: the previous digest's manifest is fetched (and kept) before the
//! watch starts, so that the rollback itself is at most three requests — read the tag, put the
//! kept manifest at it, read it back — and cannot fail for want of the previous manifest. A tag
//! that someone else moved meanwhile is not touched (the canary was superseded).
//!
//! Putting the same manifest bytes back leaves every signature, SBOM and attestation attached to
//! either digest as it was: referrers hang off digests, not tags.

use std::time::{Duration, Instant};

use gantry_oci::{Client, Digest, Manifest, OciError, Reference};

/// The previous digest's manifest, fetched and checked before the watch starts.
#[derive(Debug, Clone)]
pub struct Kept {
    /// The tag watched (`registry/repo:canary`).
    pub tag: Reference,
    /// The digest the tag points at now (the canary).
    pub canary: Digest,
    /// The previous digest's manifest, exactly as the registry served it.
    pub previous: Manifest,
}

/// Why a rollback did not happen or did not hold.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] OciError),
    /// The tag does not exist.
    #[error("{tag} does not exist")]
    Missing {
        /// The tag.
        tag: String,
    },
    /// Read back, the tag does not point where it was put.
    #[error("{tag} was put at {expected} but reads back as {found}")]
    NotHeld {
        /// The tag.
        tag: String,
        /// The previous digest.
        expected: Digest,
        /// What it reads.
        found: Digest,
    },
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolledBack {
    /// The tag points at the previous digest again, read back.
    Repointed {
        /// How long from the decision to the tag read back.
        took: Duration,
        /// Registry requests it took.
        requests: u64,
    },
    /// Someone moved the tag meanwhile: nothing was touched.
    Superseded {
        /// Where the tag points now.
        now: Digest,
    },
}

/// Before the watch: the tag's current digest and the previous digest's manifest, kept.
pub async fn prepare(
    client: &Client,
    tag: &Reference,
    previous: &Digest,
) -> Result<Kept, RollbackError> {
    let canary = client
        .head_manifest(tag)
        .await?
        .ok_or_else(|| RollbackError::Missing {
            tag: tag.to_string(),
        })?
        .digest;
    // Fetched by digest: the client checks the bytes against it.
    let manifest = client.manifest(&tag.with_digest(previous.clone())).await?;
    Ok(Kept {
        tag: tag.clone(),
        canary,
        previous: manifest,
    })
}

/// Points the tag back at the kept previous manifest, unless it moved meanwhile.
pub async fn roll_back(client: &Client, kept: &Kept) -> Result<RolledBack, RollbackError> {
    let started = Instant::now();
    let before = client.counts().requests;
    let now = client
        .head_manifest(&kept.tag)
        .await?
        .ok_or_else(|| RollbackError::Missing {
            tag: kept.tag.to_string(),
        })?
        .digest;
    if now != kept.canary {
        return Ok(RolledBack::Superseded { now });
    }
    client.put_manifest(&kept.tag, &kept.previous).await?;
    let read = client
        .head_manifest(&kept.tag)
        .await?
        .ok_or_else(|| RollbackError::Missing {
            tag: kept.tag.to_string(),
        })?
        .digest;
    if read != kept.previous.digest {
        return Err(RollbackError::NotHeld {
            tag: kept.tag.to_string(),
            expected: kept.previous.digest.clone(),
            found: read,
        });
    }
    Ok(RolledBack::Repointed {
        took: started.elapsed(),
        requests: client.counts().requests - before,
    })
}
