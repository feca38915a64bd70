//! Building a small image without Docker: a few files in one layer on scratch, reproducibly.
//!
//! Same files in, same digest out: the layer is a tar with every header fixed (mtime 0, uid and
//! gid 0, no user or group names, entries in path order, parent directories explicit), gzipped
//! with no timestamp and a fixed level; the config has no `created` history that changes and no
//! host details. This is how gantry packs itself (`cargo xtask pack`) and what `gantry demo`
//! builds.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use bytes::Bytes;
use serde_json::json;

use crate::manifest::OCI_MANIFEST;
use crate::{Client, Digest, Manifest, OciError, Reference, Result, Scope};

const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The fixed creation time: the epoch, as `SOURCE_DATE_EPOCH=0` would give.
const CREATED: &str = "1970-01-01T00:00:00Z";

/// A file in the image.
#[derive(Debug, Clone)]
pub struct ImageFile {
    /// Absolute path inside the image, e.g. `/gantry`.
    pub path: String,
    /// Unix permission bits.
    pub mode: u32,
    /// The file's content.
    pub bytes: Bytes,
}

/// What the image runs and says about itself.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// The command the image runs.
    pub entrypoint: Vec<String>,
    /// `NAME=value` environment entries.
    pub env: Vec<String>,
    /// OCI labels.
    pub labels: BTreeMap<String, String>,
    /// `amd64`, `arm64`, … (GOARCH names).
    pub architecture: String,
}

/// A built image: its blobs and manifest, ready to push or write as an OCI layout.
#[derive(Debug, Clone)]
pub struct ScratchImage {
    /// The config blob.
    pub config: Bytes,
    /// The one gzip layer.
    pub layer: Bytes,
    /// The OCI manifest naming both.
    pub manifest: Manifest,
}

impl ScratchImage {
    /// Builds the image of `files` reproducibly: the same files and config give the same digest.
    pub fn build(files: &[ImageFile], config: &ImageConfig) -> Result<Self> {
        let tar = tar_of(files)?;
        let diff_id = Digest::sha256(&tar);
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&tar).map_err(io)?;
        let layer = Bytes::from(gz.finish().map_err(io)?);
        let config_json = json!({
            "architecture": config.architecture,
            "os": "linux",
            "created": CREATED,
            "config": {
                "Entrypoint": config.entrypoint,
                "Env": config.env,
                "Labels": config.labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": CREATED, "created_by": "gantry: scratch image"}],
        });
        let config_bytes = Bytes::from(config_json.to_string());
        let manifest = image_manifest(&config_bytes, &[(LAYER_GZIP, &layer)]);
        Ok(Self {
            config: config_bytes,
            layer,
            manifest,
        })
    }

    /// The manifest's digest.
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }

    /// Pushes the blobs (skipping those already there), then the manifest to `reference` (its
    /// tag, or by digest).
    pub async fn push(&self, client: &Client, reference: &Reference) -> Result<()> {
        client
            .push_blobs_then_manifest(reference, &[&self.config, &self.layer], &self.manifest)
            .await
    }

    /// Writes an OCI image layout at `dir` with the image tagged `tag` (for skopeo, umoci, …).
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<()> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io)?;
        for blob in [&self.config, &self.layer, &self.manifest.bytes] {
            std::fs::write(blobs.join(Digest::sha256(blob).hex()), blob).map_err(io)?;
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io)?;
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": self.manifest.digest,
                "size": self.manifest.bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&index).map_err(json_error)?,
        )
        .map_err(io)
    }
}

/// The OCI image manifest over `config` (an image config) and `layers` (media type, bytes).
pub fn image_manifest(config: &Bytes, layers: &[(&str, &Bytes)]) -> Manifest {
    let layers: Vec<_> = layers
        .iter()
        .map(|(media_type, bytes)| json!({"mediaType": media_type, "digest": Digest::sha256(bytes), "size": bytes.len()}))
        .collect();
    Manifest::from_json(
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": Digest::sha256(config), "size": config.len()},
            "layers": layers,
        }),
        OCI_MANIFEST,
    )
}

impl Client {
    /// Pushes an image: `config` and `layers` (media type, bytes) as blobs, then its OCI manifest
    /// to `reference` (its tag, or by digest). Returns the manifest.
    pub async fn push_image(
        &self,
        reference: &Reference,
        config: &Bytes,
        layers: &[(&str, &Bytes)],
    ) -> Result<Manifest> {
        let manifest = image_manifest(config, layers);
        let mut blobs = vec![config];
        blobs.extend(layers.iter().map(|(_, bytes)| *bytes));
        self.push_blobs_then_manifest(reference, &blobs, &manifest)
            .await?;
        Ok(manifest)
    }

    /// Uploads the blobs the repository lacks, then puts `manifest` at `reference`'s tag, or by
    /// its digest when the reference has no tag.
    pub async fn push_blobs_then_manifest(
        &self,
        reference: &Reference,
        blobs: &[&Bytes],
        manifest: &Manifest,
    ) -> Result<()> {
        let scopes = [Scope::push(reference.repository())];
        for blob in blobs {
            let digest = Digest::sha256(blob);
            if self
                .blob_exists(reference, &digest, &scopes)
                .await?
                .is_none()
            {
                self.upload_blob(reference, &digest, (*blob).clone())
                    .await?;
            }
        }
        let target = if reference.tag().is_some() {
            reference.clone()
        } else {
            reference.with_digest(manifest.digest.clone())
        };
        self.put_manifest(&target, manifest).await?;
        Ok(())
    }
}

fn tar_of(files: &[ImageFile]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&ImageFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    let mut directories = std::collections::BTreeSet::new();
    for file in sorted {
        let relative = file.path.trim_start_matches('/');
        if relative.is_empty() || relative.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(OciError::Protocol(format!(
                "image path {:?} is not a clean absolute file path",
                file.path
            )));
        }
        let mut parent = Path::new(relative).parent();
        let mut missing = Vec::new();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if directories.insert(dir.to_owned()) {
                missing.push(dir.to_owned());
            }
            parent = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            let mut header = header(tar::EntryType::Directory, 0o755, 0);
            builder
                .append_data(&mut header, format!("{}/", dir.display()), std::io::empty())
                .map_err(io)?;
        }
        let mut header = header(tar::EntryType::Regular, file.mode, file.bytes.len() as u64);
        builder
            .append_data(&mut header, relative, file.bytes.as_ref())
            .map_err(io)?;
    }
    builder.into_inner().map_err(io)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn io(error: std::io::Error) -> OciError {
    OciError::Build(error)
}

fn json_error(error: serde_json::Error) -> OciError {
    OciError::Build(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(content: &'static [u8]) -> Vec<ImageFile> {
        vec![
            ImageFile {
                path: "/usr/bin/tool".into(),
                mode: 0o755,
                bytes: Bytes::from_static(content),
            },
            ImageFile {
                path: "/etc/motd".into(),
                mode: 0o644,
                bytes: Bytes::from_static(b"hello\n"),
            },
        ]
    }

    fn config() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/usr/bin/tool".into()],
            architecture: "amd64".into(),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn same_files_same_digest_whatever_their_order() {
        let a = ScratchImage::build(&files(b"v1"), &config()).expect("build");
        let mut reversed = files(b"v1");
        reversed.reverse();
        let b = ScratchImage::build(&reversed, &config()).expect("build");
        assert_eq!(a.digest(), b.digest());
        let c = ScratchImage::build(&files(b"v2"), &config()).expect("build");
        assert_ne!(
            a.digest(),
            c.digest(),
            "different content, different digest"
        );
    }

    #[test]
    fn the_layer_lists_parents_before_children_with_fixed_headers() {
        let image = ScratchImage::build(&files(b"v1"), &config()).expect("build");
        let tar = flate2::read::GzDecoder::new(image.layer.as_ref());
        let mut archive = tar::Archive::new(tar);
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let header = entry.header();
            assert_eq!(header.mtime().expect("mtime"), 0);
            assert_eq!(header.uid().expect("uid"), 0);
            seen.push(entry.path().expect("path").display().to_string());
        }
        assert_eq!(
            seen,
            ["etc/", "etc/motd", "usr/", "usr/bin/", "usr/bin/tool"]
        );
    }

    #[test]
    fn unclean_paths_are_refused() {
        for path in ["relative/../x", "/", "/a//b"] {
            let file = ImageFile {
                path: path.into(),
                mode: 0o644,
                bytes: Bytes::new(),
            };
            assert!(ScratchImage::build(&[file], &config()).is_err(), "{path}");
        }
    }
}
