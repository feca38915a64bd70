//! Media types, descriptors and the few manifest fields gantry reads. Manifests are never
//! re-serialised: gantry keeps the bytes it fetched and pushes them unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{OciError, Result};

/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// A Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker v2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Every manifest type gantry asks for, always all four (distribution 2.8 answers 404 for an OCI
/// manifest requested without the OCI type, even by digest).
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// The empty config of artifacts (`{}`).
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// An uncompressed tar layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// The limit on a manifest's size; the spec asks registries to accept 4 MiB.
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The content's media type.
    pub media_type: String,
    /// The content's digest.
    pub digest: Digest,
    /// The content's size in bytes.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The artifact type (referrers).
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The platform (index entries).
    pub platform: Option<serde_json::Value>,
}

/// The fields of an image manifest or index that copying and referrers need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFields {
    #[serde(default)]
    /// 2 for every manifest gantry reads.
    pub schema_version: Option<u32>,
    #[serde(default)]
    /// The declared media type.
    pub media_type: Option<String>,
    #[serde(default)]
    /// The artifact type.
    pub artifact_type: Option<String>,
    #[serde(default)]
    /// The config (image manifests).
    pub config: Option<Descriptor>,
    #[serde(default)]
    /// The layers (image manifests).
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    /// The child manifests (indexes).
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    /// The manifest this one refers to.
    pub subject: Option<Descriptor>,
    #[serde(default)]
    /// Annotations.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest as fetched: its exact bytes, media type and verified digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The bytes as fetched (never re-serialised).
    pub bytes: bytes::Bytes,
    /// The media type (from the content or the `Content-Type`).
    pub media_type: String,
    /// The digest of the bytes.
    pub digest: Digest,
}

impl Manifest {
    /// A manifest to push: `bytes` exactly as they will be stored, and their digest.
    pub fn new(bytes: impl Into<bytes::Bytes>, media_type: &str) -> Self {
        let bytes = bytes.into();
        Self {
            digest: Digest::sha256(&bytes),
            bytes,
            media_type: media_type.to_owned(),
        }
    }

    /// `body` serialised compactly as a manifest of `media_type`.
    pub fn from_json(body: &serde_json::Value, media_type: &str) -> Self {
        Self::new(body.to_string(), media_type)
    }

    /// The fields gantry reads.
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

    /// Whether it is an index or manifest list.
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

/// A platform such as `linux/amd64` or `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    pub variant: Option<String>,
}

impl std::str::FromStr for Platform {
    type Err = OciError;
    fn from_str(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, ""] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: Some((*variant).to_owned()),
            }),
            _ => Err(OciError::Protocol(format!(
                "platform {text:?} is not os/architecture[/variant]"
            ))),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Manifest {
    /// The child of an index for `platform`. Without a variant in `platform`, any variant
    /// matches; several matches are an error rather than a guess.
    pub fn select_platform(&self, platform: &Platform) -> Result<Descriptor> {
        if !self.is_index() {
            return Err(OciError::Protocol(format!(
                "{} is a single-platform {}, not an index",
                self.digest, self.media_type
            )));
        }
        let children = self.fields()?.manifests;
        let of = |d: &Descriptor| -> Option<Platform> {
            let p = d.platform.as_ref()?;
            Some(Platform {
                os: p.get("os")?.as_str()?.to_owned(),
                architecture: p.get("architecture")?.as_str()?.to_owned(),
                variant: p.get("variant").and_then(|v| v.as_str()).map(str::to_owned),
            })
        };
        let matching: Vec<&Descriptor> = children
            .iter()
            .filter(|d| {
                of(d).is_some_and(|p| {
                    p.os == platform.os
                        && p.architecture == platform.architecture
                        && platform
                            .variant
                            .as_ref()
                            .is_none_or(|v| p.variant.as_ref() == Some(v))
                })
            })
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(OciError::NotFound {
                what: format!(
                    "platform {platform} in index {} (it has: {})",
                    self.digest,
                    children
                        .iter()
                        .filter_map(of)
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            _ => Err(OciError::Protocol(format!(
                "platform {platform} matches {} manifests in index {}; name the variant",
                matching.len(),
                self.digest
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn index(children: &[(&str, &str, Option<&str>)]) -> Manifest {
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut platform = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    platform["variant"] = serde_json::json!(v);
                }
                serde_json::json!({"mediaType": OCI_MANIFEST, "digest": Digest::sha256(&[u8::try_from(i).unwrap_or(0)]), "size": 1, "platform": platform})
            })
            .collect();
        Manifest::from_json(
            &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
            OCI_INDEX,
        )
    }

    #[test]
    fn selects_one_platform_and_explains_misses() {
        let idx = index(&[
            ("linux", "amd64", None),
            ("linux", "arm64", Some("v8")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm", Some("v6")),
        ]);
        let amd = idx
            .select_platform(&"linux/amd64".parse().expect("platform"))
            .expect("amd64");
        assert_eq!(amd.digest, Digest::sha256(&[0]));
        let arm64 = idx
            .select_platform(&"linux/arm64".parse().expect("platform"))
            .expect("arm64, any variant");
        assert_eq!(arm64.digest, Digest::sha256(&[1]));
        let ambiguous = idx
            .select_platform(&"linux/arm".parse().expect("platform"))
            .expect_err("two variants");
        assert!(
            ambiguous.to_string().contains("name the variant"),
            "{ambiguous}"
        );
        assert_eq!(
            idx.select_platform(&"linux/arm/v6".parse().expect("platform"))
                .expect("v6")
                .digest,
            Digest::sha256(&[3])
        );
        let missing = idx
            .select_platform(&"windows/amd64".parse().expect("platform"))
            .expect_err("missing");
        assert!(
            missing
                .to_string()
                .contains("it has: linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6"),
            "{missing}"
        );
        assert!("linux".parse::<Platform>().is_err());
    }
}
