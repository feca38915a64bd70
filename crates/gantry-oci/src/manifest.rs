//! Media types, descriptors and the few manifest fields gantry reads. Manifests are never
//! re-serialised: gantry keeps the bytes it fetched and pushes them unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{OciError, Result};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Every manifest type gantry asks for, always all four (distribution 2.8 answers 404 for an OCI
/// manifest requested without the OCI type, even by digest).
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// The limit on a manifest's size; the spec asks registries to accept 4 MiB.
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

/// The fields of an image manifest or index that copying and referrers need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFields {
    #[serde(default)]
    pub schema_version: Option<u32>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest as fetched: its exact bytes, media type and verified digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: bytes::Bytes,
    pub media_type: String,
    pub digest: Digest,
}

impl Manifest {
    pub fn fields(&self) -> Result<ManifestFields> {
        let fields: ManifestFields =
            serde_json::from_slice(&self.bytes).map_err(|e| OciError::InvalidManifest {
                what: self.digest.to_string(),
                reason: format!("not JSON of a manifest: {e}"),
            })?;
        if fields.schema_version == Some(1) {
            return Err(OciError::InvalidManifest {
                what: self.digest.to_string(),
                reason: "Docker schema 1 is not supported".to_owned(),
            });
        }
        Ok(fields)
    }

    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    /// This manifest as a descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            artifact_type: None,
            annotations: None,
            platform: None,
        }
    }
}

/// The media type of manifest bytes: the body's `mediaType`, else the `Content-Type` header.
pub fn media_type_of(bytes: &[u8], content_type: Option<&str>) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Option<Probe> = serde_json::from_slice(bytes).ok();
    if let Some(media_type) = probe.as_ref().and_then(|p| p.media_type.clone()) {
        return media_type;
    }
    let header = content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_owned());
    match header {
        Some(h) if !h.is_empty() && h != "application/json" && h != "application/octet-stream" => h,
        _ if probe.is_some_and(|p| p.manifests.is_some()) => OCI_INDEX.to_owned(),
        _ => OCI_MANIFEST.to_owned(),
    }
}
