//! Manifests and tags: read (checked against their digest), resolved, pushed unchanged.

use reqwest::{Method, header};
use serde::Deserialize;

use crate::client::Client;
use crate::digest::Digest;
use crate::engine::{Scope, content_length, header_str, next_link, read_limited};
use crate::error::{OciError, Result};
use crate::manifest::{Descriptor, MANIFEST_LIMIT, Manifest, media_type_of};
use crate::reference::Reference;

/// The most a tag list may hold across all its pages, and the most pages.
const TAG_LIST_LIMIT: u64 = 16 * 1024 * 1024;
const TAG_PAGES: usize = 1000;

impl Client {
    /// Fetches a manifest by tag or digest and checks its digest: against the reference's digest,
    /// else against the registry's `Docker-Content-Digest` when it sends one.
    pub async fn manifest(&self, reference: &Reference) -> Result<Manifest> {
        self.manifest_with_scopes(reference, &[Scope::pull(reference.repository())])
            .await
    }

    pub(crate) async fn manifest_with_scopes(
        &self,
        reference: &Reference,
        scopes: &[Scope],
    ) -> Result<Manifest> {
        let what = format!("manifest {reference}");
        let response = self
            .engine
            .call(
                Method::GET,
                reference,
                &format!("manifests/{}", reference.manifest_reference()),
            )
            .scopes(scopes)
            .accept_manifests()
            .what(&what)
            .ok()
            .await?;
        let content_type = header_str(response.headers(), header::CONTENT_TYPE);
        let claimed = header_str(response.headers(), "docker-content-digest");
        let bytes = read_limited(&self.engine, response, MANIFEST_LIMIT, &what).await?;
        let expected = match reference.digest() {
            Some(digest) => Some(digest.clone()),
            None => claimed.as_deref().and_then(|c| c.parse::<Digest>().ok()),
        };
        let actual = expected
            .as_ref()
            .map_or_else(|| Digest::sha256(&bytes), |e| e.hash_like(&bytes));
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(OciError::DigestMismatch {
                what,
                expected,
                actual,
            });
        }
        let media_type = media_type_of(&bytes, content_type.as_deref());
        Ok(Manifest {
            bytes,
            media_type,
            digest: actual,
        })
    }

    /// `image` pinned to the digest it names now (read once, checked), and with `platforms` the
    /// manifests of an index as well: what a tool signs or verifies "by digest".
    pub async fn pinned(&self, image: &Reference, platforms: bool) -> Result<Vec<Reference>> {
        let manifest = self.manifest(image).await?;
        let top = image.with_digest(manifest.digest.clone());
        let mut out = vec![top.clone()];
        if platforms {
            for child in manifest.fields()?.manifests {
                out.push(top.with_digest(child.digest.clone()));
            }
        }
        Ok(out)
    }

    /// What a tag or digest points at, by HEAD (GET when the registry sends no digest header).
    pub async fn resolve(&self, reference: &Reference) -> Result<Descriptor> {
        match self.head_manifest(reference).await? {
            Some(descriptor) => Ok(descriptor),
            None => Err(OciError::NotFound {
                what: format!("manifest {reference}"),
            }),
        }
    }

    /// Like [`Self::resolve`], with `None` for a manifest that does not exist.
    pub async fn head_manifest(&self, reference: &Reference) -> Result<Option<Descriptor>> {
        self.head_manifest_with_scopes(reference, &[Scope::pull(reference.repository())])
            .await
    }

    pub(crate) async fn head_manifest_with_scopes(
        &self,
        reference: &Reference,
        scopes: &[Scope],
    ) -> Result<Option<Descriptor>> {
        let Some(response) = self
            .engine
            .call(
                Method::HEAD,
                reference,
                &format!("manifests/{}", reference.manifest_reference()),
            )
            .scopes(scopes)
            .accept_manifests()
            .what(format!("manifest {reference}"))
            .found()
            .await?
        else {
            return Ok(None);
        };
        let digest = header_str(response.headers(), "docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok());
        let media_type = header_str(response.headers(), header::CONTENT_TYPE);
        let size = content_length(response.headers());
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size))
                if reference.digest().is_none_or(|d| *d == digest)
                    && media_type != "application/json" =>
            {
                let media_type = media_type
                    .split(';')
                    .next()
                    .unwrap_or(&media_type)
                    .trim()
                    .to_owned();
                Ok(Some(Descriptor {
                    media_type,
                    digest,
                    size,
                    artifact_type: None,
                    annotations: None,
                    platform: None,
                }))
            }
            _ => Ok(Some(
                self.manifest_with_scopes(reference, scopes)
                    .await?
                    .descriptor(),
            )),
        }
    }

    /// Pushes manifest bytes unchanged at `reference` (tag or digest). Returns whether the
    /// registry handled a `subject` itself (`OCI-Subject` header).
    pub async fn put_manifest(&self, reference: &Reference, manifest: &Manifest) -> Result<bool> {
        let response = self
            .engine
            .call(
                Method::PUT,
                reference,
                &format!("manifests/{}", reference.manifest_reference()),
            )
            .bytes(manifest.bytes.clone(), &manifest.media_type)
            .what(format!("manifest {reference}"))
            .ok()
            .await?;
        if let Some(claimed) = header_str(response.headers(), "docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok())
            && claimed != manifest.digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("manifest pushed to {reference} (as the registry stored it)"),
                expected: manifest.digest.clone(),
                actual: claimed,
            });
        }
        Ok(response.headers().contains_key("oci-subject"))
    }

    /// All tags of a repository, following `Link` pagination (at most 16 MiB of lists in all).
    pub async fn tags(&self, reference: &Reference) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let what = format!("tags of {}", reference.name());
        let mut call = self.engine.call(Method::GET, reference, "tags/list");
        let mut tags = Vec::new();
        let mut read = 0;
        for _ in 0..TAG_PAGES {
            let Some(response) = call.what(&what).found().await? else {
                return Ok(tags);
            };
            let next = next_link(response.headers());
            let page = read_limited(&self.engine, response, TAG_LIST_LIMIT - read, &what).await?;
            read += page.len() as u64;
            let list: TagList = serde_json::from_slice(&page)
                .map_err(|e| OciError::Protocol(format!("{what}: not a tag list: {e}")))?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(link) => call = self.engine.follow(Method::GET, reference, &link),
                None => return Ok(tags),
            }
        }
        Err(OciError::Protocol(format!(
            "{what}: more than {TAG_PAGES} pages"
        )))
    }
}
