//! Referrers: the API when the registry has it, the `sha256-<hex>` fallback tag when it does not,
//! and pushing artifacts with a `subject`, maintaining the fallback index ourselves when needed.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{self, HeaderValue};
use serde_json::json;

use crate::client::Client;
use crate::digest::Digest;
use crate::engine::{Scope, check_status, header_str, next_link, read_limited};
use crate::error::{OciError, Result};
use crate::manifest::{Descriptor, EMPTY_CONFIG, Manifest, OCI_INDEX, OCI_MANIFEST};
use crate::reference::Reference;

/// Where a list of referrers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersSource {
    /// The referrers API.
    Api,
    /// The `sha256-<hex>` fallback tag.
    FallbackTag,
}

/// The referrers of one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    /// The referrers found.
    pub descriptors: Vec<Descriptor>,
    /// Where they were found.
    pub source: ReferrersSource,
}

/// An artifact to push: an image manifest with `artifactType`, the empty config, its layers and
/// optionally a `subject`.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The artifact's type.
    pub artifact_type: String,
    /// Its layers.
    pub layers: Vec<ArtifactLayer>,
    /// The manifest it refers to, if any.
    pub subject: Option<Descriptor>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
/// One layer of an [`Artifact`].
pub struct ArtifactLayer {
    /// The layer's media type.
    pub media_type: String,
    /// The layer's content.
    pub bytes: Bytes,
    /// Layer annotations.
    pub annotations: BTreeMap<String, String>,
}

const EMPTY_JSON: &[u8] = b"{}";

/// The most a referrers listing may hold across all its pages, and the most pages.
const REFERRERS_LIMIT: u64 = 16 * 1024 * 1024;
const REFERRER_PAGES: usize = 1000;

fn index_entries(bytes: &[u8], what: &str) -> Result<Vec<serde_json::Value>> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| OciError::InvalidManifest {
            what: what.to_owned(),
            reason: format!("not JSON: {e}"),
        })?;
    match value.get("manifests") {
        Some(serde_json::Value::Array(entries)) => Ok(entries.clone()),
        None if value.get("mediaType").and_then(|m| m.as_str()) == Some(OCI_INDEX) => {
            Ok(Vec::new())
        }
        _ => Err(OciError::InvalidManifest {
            what: what.to_owned(),
            reason: "not an image index".to_owned(),
        }),
    }
}

fn descriptors(entries: Vec<serde_json::Value>, what: &str) -> Result<Vec<Descriptor>> {
    entries
        .into_iter()
        .map(|e| {
            serde_json::from_value(e).map_err(|err| OciError::InvalidManifest {
                what: what.to_owned(),
                reason: format!("bad descriptor: {err}"),
            })
        })
        .collect()
}

impl Client {
    /// The referrers of `subject` (a reference with a digest), optionally of one artifact type.
    /// Fails closed: only a registry that says it has no such API (404, 400, 405, 406, or a 200
    /// that is not an index) sends us to the fallback tag; any other failure is an error.
    pub async fn referrers(
        &self,
        subject: &Reference,
        artifact_type: Option<&str>,
    ) -> Result<Referrers> {
        let digest = subject.digest().ok_or_else(|| {
            OciError::Protocol(format!("referrers need a digest, {subject} has none"))
        })?;
        let what = format!("referrers of {subject}");
        let mut call = self
            .engine
            .call(Method::GET, subject, &format!("referrers/{digest}"));
        if let Some(kind) = artifact_type {
            call = call.query("artifactType", kind);
        }
        let mut found = Vec::new();
        let mut read = 0;
        for page in 1..=REFERRER_PAGES {
            let response = call
                .header(header::ACCEPT, HeaderValue::from_static(OCI_INDEX))
                .what(&what)
                .send()
                .await?;
            let status = response.status();
            if matches!(status.as_u16(), 404 | 400 | 405 | 406) && page == 1 {
                return self
                    .fallback_referrers(subject, digest, artifact_type)
                    .await;
            }
            let url = response.url().to_string();
            let response = check_status(response, &Method::GET, &url, &what).await?;
            let filtered = header_str(response.headers(), "oci-filters-applied")
                .is_some_and(|f| f.contains("artifactType"));
            let next = next_link(response.headers());
            let body = read_limited(&self.engine, response, REFERRERS_LIMIT - read, &what).await?;
            read += body.len() as u64;
            let Ok(entries) = index_entries(&body, "referrers") else {
                if page == 1 {
                    return self
                        .fallback_referrers(subject, digest, artifact_type)
                        .await;
                }
                return Err(OciError::Protocol(format!(
                    "page {page} of the referrers of {subject} is not an index"
                )));
            };
            let listed = descriptors(entries, &what)?;
            found.extend(
                listed
                    .into_iter()
                    .filter(|d| filtered || matches_type(d, artifact_type)),
            );
            match next {
                Some(link) => call = self.engine.follow(Method::GET, subject, &link),
                None => {
                    return Ok(Referrers {
                        descriptors: found,
                        source: ReferrersSource::Api,
                    });
                }
            }
        }
        Err(OciError::Protocol(format!(
            "{what}: more than {REFERRER_PAGES} pages"
        )))
    }

    async fn fallback_referrers(
        &self,
        subject: &Reference,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers> {
        let entries = self.fallback_index(subject, digest).await?;
        let descriptors = descriptors(entries, &format!("fallback tag {}", digest.fallback_tag()))?
            .into_iter()
            .filter(|d| matches_type(d, artifact_type))
            .collect();
        Ok(Referrers {
            descriptors,
            source: ReferrersSource::FallbackTag,
        })
    }

    /// The entries of the fallback index of `digest`, empty when the tag does not exist.
    async fn fallback_index(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<Vec<serde_json::Value>> {
        let tag = repository.with_tag(&digest.fallback_tag())?;
        match self
            .manifest_with_scopes(&tag, &[Scope::pull(repository.repository())])
            .await
        {
            Ok(manifest) if manifest.digest == *digest => {
                // GitLab answers the fallback tag with the subject itself: there is no index.
                Ok(Vec::new())
            }
            Ok(manifest) => index_entries(&manifest.bytes, &format!("fallback tag {tag}")),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Adds `descriptor` to the fallback index of `subject` in `repository`: read, dedupe, append,
    /// write, and read again to catch an update lost to a concurrent writer.
    pub async fn add_to_fallback_index(
        &self,
        repository: &Reference,
        subject: &Digest,
        descriptor: &Descriptor,
    ) -> Result<()> {
        let tag = repository.with_tag(&subject.fallback_tag())?;
        for _ in 0..5 {
            let mut entries = self.fallback_index(repository, subject).await?;
            let present = |entries: &[serde_json::Value]| {
                entries.iter().any(|e| {
                    e.get("digest").and_then(|d| d.as_str()) == Some(descriptor.digest.as_str())
                })
            };
            if present(&entries) {
                return Ok(());
            }
            entries.push(
                serde_json::to_value(descriptor).map_err(|e| OciError::Protocol(e.to_string()))?,
            );
            let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
            let manifest = Manifest::from_json(&index, OCI_INDEX);
            self.put_manifest(&tag, &manifest).await?;
            if present(&self.fallback_index(repository, subject).await?) {
                return Ok(());
            }
            tracing::debug!("fallback index {tag} lost our entry to a concurrent writer; retrying");
        }
        Err(OciError::Protocol(format!(
            "could not add {} to the fallback index {tag}: concurrent writers kept replacing it",
            descriptor.digest
        )))
    }

    /// Pushes an artifact by digest; with a subject, makes it findable as a referrer either way.
    pub async fn push_artifact(
        &self,
        repository: &Reference,
        artifact: &Artifact,
    ) -> Result<Manifest> {
        let scopes = [Scope::push(repository.repository())];
        let empty = Digest::sha256(EMPTY_JSON);
        if self
            .blob_exists(repository, &empty, &scopes)
            .await?
            .is_none()
        {
            self.upload_blob(repository, &empty, Bytes::from_static(EMPTY_JSON))
                .await?;
        }
        let mut layers = Vec::new();
        for layer in &artifact.layers {
            let digest = Digest::sha256(&layer.bytes);
            if self
                .blob_exists(repository, &digest, &scopes)
                .await?
                .is_none()
            {
                self.upload_blob(repository, &digest, layer.bytes.clone())
                    .await?;
            }
            let mut entry =
                json!({"mediaType": layer.media_type, "digest": digest, "size": layer.bytes.len()});
            if !layer.annotations.is_empty() {
                entry["annotations"] = json!(layer.annotations);
            }
            layers.push(entry);
        }
        let mut body = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact.artifact_type,
            "config": {"mediaType": EMPTY_CONFIG, "digest": empty, "size": EMPTY_JSON.len(), "data": "e30="},
            "layers": layers,
        });
        if let Some(subject) = &artifact.subject {
            body["subject"] = json!({"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size});
        }
        if !artifact.annotations.is_empty() {
            body["annotations"] = json!(artifact.annotations);
        }
        let manifest = Manifest::from_json(&body, OCI_MANIFEST);
        let handled = self
            .put_manifest(&repository.with_digest(manifest.digest.clone()), &manifest)
            .await?;
        if let (Some(subject), false) = (&artifact.subject, handled) {
            let mut descriptor = manifest.descriptor();
            descriptor.artifact_type = Some(artifact.artifact_type.clone());
            descriptor.annotations =
                (!artifact.annotations.is_empty()).then(|| artifact.annotations.clone());
            self.add_to_fallback_index(repository, &subject.digest, &descriptor)
                .await?;
        }
        Ok(manifest)
    }
}

fn matches_type(descriptor: &Descriptor, artifact_type: Option<&str>) -> bool {
    artifact_type.is_none_or(|kind| descriptor.artifact_type.as_deref() == Some(kind))
}
