//! Copies that preserve digests byte for byte, in the order that keeps a tag from ever pointing at
//! something incomplete: blobs, child manifests, the manifest by digest, referrers and legacy
//! cosign tags, and the target tag last.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt as _, TryStreamExt as _};
use reqwest::{Method, Url};

use crate::client::Client;
use crate::digest::Digest;
use crate::engine::{Counts, Scope, check_status};
use crate::error::{OciError, Result};
use crate::manifest::{Descriptor, Manifest};
use crate::reference::Reference;

/// What to carry along with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOptions {
    /// Referrers (signatures, SBOMs, attestations) of the image and of its platform manifests,
    /// recursively.
    pub referrers: bool,
    /// Legacy cosign tags `sha256-<hex>.sig`, `.att` and `.sbom`.
    pub legacy_cosign_tags: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            referrers: true,
            legacy_cosign_tags: true,
        }
    }
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CopyReport {
    /// The digest copied.
    pub digest: Option<Digest>,
    /// Its media type.
    pub media_type: String,
    /// Manifests pushed (children, referrers and the tag included).
    pub manifests_pushed: usize,
    /// Blobs mounted from another repository of the same registry.
    pub blobs_mounted: usize,
    /// Blobs streamed into the target.
    pub blobs_uploaded: usize,
    /// Blobs the target had already.
    pub blobs_present: usize,
    /// Referrers carried along.
    pub referrers: Vec<Digest>,
    /// Legacy cosign tags carried along.
    pub legacy_tags: Vec<String>,
    /// Requests and bytes the copy took.
    pub counts: Counts,
}

#[derive(Default)]
struct Tally {
    manifests_pushed: usize,
    blobs_mounted: usize,
    blobs_uploaded: usize,
    blobs_present: usize,
    referrers: Vec<Digest>,
    legacy_tags: Vec<String>,
    done: BTreeSet<Digest>,
}

const LEGACY_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];
const REFERRER_DEPTH: usize = 4;

enum BlobOutcome {
    Present,
    Mounted,
    Uploaded,
}

impl Client {
    /// Copies `source` (a tag or digest) to `target`: a tag to move last, or only a repository
    /// (then nothing is tagged). Same repository: one manifest read and one PUT of the tag.
    pub async fn copy(
        &self,
        source: &Reference,
        target: &Reference,
        options: CopyOptions,
    ) -> Result<CopyReport> {
        let before = self.counts();
        let same_registry = source.api_host() == target.api_host();
        let same_repository = same_registry && source.repository() == target.repository();
        let src_scopes = if same_repository {
            vec![Scope::push(source.repository())]
        } else {
            vec![Scope::pull(source.repository())]
        };
        let root = self.manifest_with_scopes(source, &src_scopes).await?;
        let mut tally = Tally::default();
        if !same_repository {
            let source_at = source.with_digest(root.digest.clone());
            self.copy_tree(&source_at, target, &root, &mut tally)
                .await?;
            if options.referrers || options.legacy_cosign_tags {
                self.copy_attached(&source_at, target, &root, options, &mut tally, 0)
                    .await?;
            }
        }
        if let Some(tag) = target.tag() {
            // By tag even when the target also names a digest, which would be the manifest URL.
            self.put_manifest(&target.with_tag(tag)?, &root).await?;
            tally.manifests_pushed += 1;
        }
        Ok(CopyReport {
            digest: Some(root.digest.clone()),
            media_type: root.media_type.clone(),
            manifests_pushed: tally.manifests_pushed,
            blobs_mounted: tally.blobs_mounted,
            blobs_uploaded: tally.blobs_uploaded,
            blobs_present: tally.blobs_present,
            referrers: tally.referrers,
            legacy_tags: tally.legacy_tags,
            counts: self.counts() - before,
        })
    }

    /// Copies `manifest` (fetched from `source`) and everything it references, and pushes it by
    /// digest. `Some(handled)` when it pushed the manifest (`handled`: the registry took care of its
    /// `subject`), `None` when the target already had it.
    async fn copy_tree(
        &self,
        source: &Reference,
        target: &Reference,
        manifest: &Manifest,
        tally: &mut Tally,
    ) -> Result<Option<bool>> {
        if tally.done.contains(&manifest.digest) {
            return Ok(None);
        }
        let fields = manifest.fields()?;
        if manifest.is_index() {
            for child in &fields.manifests {
                let child_ref = source.with_digest(child.digest.clone());
                let child_manifest = self.manifest(&child_ref).await?;
                Box::pin(self.copy_tree(&child_ref, target, &child_manifest, tally)).await?;
            }
        } else {
            let blobs: Vec<Descriptor> = fields
                .config
                .iter()
                .chain(fields.layers.iter())
                .cloned()
                .collect();
            let outcomes: Vec<BlobOutcome> = futures_util::stream::iter(blobs)
                .map(|blob| async move { self.ensure_blob(source, target, &blob).await })
                .buffer_unordered(self.options().concurrency.max(1))
                .try_collect()
                .await?;
            for outcome in outcomes {
                match outcome {
                    BlobOutcome::Present => tally.blobs_present += 1,
                    BlobOutcome::Mounted => tally.blobs_mounted += 1,
                    BlobOutcome::Uploaded => tally.blobs_uploaded += 1,
                }
            }
        }
        let target_at = target.with_digest(manifest.digest.clone());
        let mut pushed = None;
        if self
            .head_manifest_with_scopes(&target_at, &[Scope::push(target.repository())])
            .await?
            .is_none()
        {
            pushed = Some(self.put_manifest(&target_at, manifest).await?);
            tally.manifests_pushed += 1;
        }
        tally.done.insert(manifest.digest.clone());
        Ok(pushed)
    }

    /// Referrers and legacy cosign tags of `manifest` (and of its children), recursively.
    async fn copy_attached(
        &self,
        source: &Reference,
        target: &Reference,
        manifest: &Manifest,
        options: CopyOptions,
        tally: &mut Tally,
        depth: usize,
    ) -> Result<()> {
        if depth >= REFERRER_DEPTH {
            return Ok(());
        }
        let mut subjects = vec![manifest.descriptor()];
        if manifest.is_index() {
            subjects.extend(manifest.fields()?.manifests);
        }
        for subject in subjects {
            let subject_ref = source.with_digest(subject.digest.clone());
            if options.referrers {
                let referrers = self.referrers(&subject_ref, None).await?;
                for descriptor in referrers.descriptors {
                    if tally.referrers.contains(&descriptor.digest) {
                        continue;
                    }
                    let referrer_ref = source.with_digest(descriptor.digest.clone());
                    let referrer = self.manifest(&referrer_ref).await?;
                    let pushed =
                        Box::pin(self.copy_tree(&referrer_ref, target, &referrer, tally)).await?;
                    tally.referrers.push(descriptor.digest.clone());
                    // A registry without the referrers API needs the fallback index kept by us.
                    let handled_by_registry = match pushed {
                        Some(handled) => handled,
                        None => {
                            self.target_has_referrers_api(target, &subject.digest)
                                .await?
                        }
                    };
                    if !handled_by_registry {
                        self.add_to_fallback_index(target, &subject.digest, &descriptor)
                            .await?;
                    }
                    Box::pin(self.copy_attached(
                        &referrer_ref,
                        target,
                        &referrer,
                        options,
                        tally,
                        depth + 1,
                    ))
                    .await?;
                }
            }
            if options.legacy_cosign_tags {
                for suffix in LEGACY_SUFFIXES {
                    let tag = format!("{}.{suffix}", subject.digest.fallback_tag());
                    let legacy = source.with_tag(&tag)?;
                    let Some(found) = self.head_manifest(&legacy).await? else {
                        continue;
                    };
                    let legacy_at = source.with_digest(found.digest.clone());
                    let legacy_manifest = self.manifest(&legacy_at).await?;
                    Box::pin(self.copy_tree(&legacy_at, target, &legacy_manifest, tally)).await?;
                    self.put_manifest(&target.with_tag(&tag)?, &legacy_manifest)
                        .await?;
                    tally.manifests_pushed += 1;
                    tally.legacy_tags.push(tag);
                }
            }
        }
        Ok(())
    }

    /// Whether the target registry answers the referrers API for `subject` (a registry that
    /// supports it never answers 404).
    async fn target_has_referrers_api(&self, target: &Reference, subject: &Digest) -> Result<bool> {
        let referrers = self
            .referrers(&target.with_digest(subject.clone()), None)
            .await?;
        Ok(referrers.source == crate::referrers::ReferrersSource::Api)
    }

    async fn ensure_blob(
        &self,
        source: &Reference,
        target: &Reference,
        blob: &Descriptor,
    ) -> Result<BlobOutcome> {
        let push = [Scope::push(target.repository())];
        if self
            .blob_exists(target, &blob.digest, &push)
            .await?
            .is_some()
        {
            return Ok(BlobOutcome::Present);
        }
        let location = if source.api_host() == target.api_host() {
            match self.mount_blob(target, source, &blob.digest).await? {
                None => return Ok(BlobOutcome::Mounted),
                Some(location) => location,
            }
        } else {
            self.start_upload(target, &push).await?
        };
        self.stream_blob(source, target, blob, location).await?;
        Ok(BlobOutcome::Uploaded)
    }

    /// Streams a blob from `source` into an open upload at `location`, never holding it whole in
    /// memory, and checks the bytes against the digest on the way through.
    async fn stream_blob(
        &self,
        source: &Reference,
        target: &Reference,
        blob: &Descriptor,
        location: Url,
    ) -> Result<()> {
        let download = self.blob_response(source, &blob.digest).await?;
        let hasher = Arc::new(Mutex::new(Some(blob.digest.hasher())));
        let tap = hasher.clone();
        let stream = download.bytes_stream().inspect_ok(move |chunk| {
            if let Some(h) = tap
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_mut()
            {
                h.update(chunk);
            }
        });
        let response = self
            .finish_upload(target, &location, &blob.digest)
            .scopes(&[Scope::push(target.repository())])
            .stream(
                reqwest::Body::wrap_stream(stream),
                "application/octet-stream",
            )
            .send()
            .await?;
        let actual = hasher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .map(crate::digest::Hasher::finish);
        if let Some(actual) = actual
            && actual != blob.digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("blob {} from {}", blob.digest, source.name()),
                expected: blob.digest.clone(),
                actual,
            });
        }
        let url = response.url().to_string();
        check_status(
            response,
            &Method::PUT,
            &url,
            &format!("blob {} to {}", blob.digest, target.name()),
        )
        .await?;
        self.engine.count_down(blob.size);
        self.engine.count_up(blob.size);
        Ok(())
    }
}
