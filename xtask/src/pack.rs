//! `cargo xtask pack`: the static binary in a scratch image, reproducibly (the image every
//! generated action runs, pinned by digest in `actions/IMAGE`).
//!
//! The image is built by the same code `gantry demo` uses ([`gantry::demo::scratch_image`]): one
//! layer holding `/gantry`, every tar header and the gzip stream fixed, so the digest depends on
//! the binary alone. It is written as an OCI layout (for skopeo, umoci, `docker load` via skopeo)
//! and, with `--push`, pushed with gantry's own registry client (credentials from the Docker
//! config, as `docker login` leaves them).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Where the OCI layout goes unless told otherwise.
pub fn default_layout(root: &Path) -> PathBuf {
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target_dir.join("pack/layout")
}

/// Builds the image of `binary`, writes it at `layout` tagged with the version, pushes it to
/// `push` when given, and returns its digest.
pub fn pack(binary: &Path, layout: &Path, push: Option<&str>) -> anyhow::Result<String> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let image = gantry::demo::scratch_image(bytes.into())?;
    let size = gantry::demo::pushed_size(&image);
    anyhow::ensure!(
        size <= gantry::demo::ACTION_IMAGE_LIMIT,
        "the action image weighs {size} bytes as pushed; the limit is {} (every action step pulls it)",
        gantry::demo::ACTION_IMAGE_LIMIT
    );
    if layout.exists() {
        std::fs::remove_dir_all(layout)
            .with_context(|| format!("clearing {}", layout.display()))?;
    }
    image.write_layout(layout, env!("CARGO_PKG_VERSION"))?;
    if let Some(reference) = push {
        let reference: gantry_oci::Reference = reference.parse().context("--push")?;
        let client = gantry_oci::Client::new(
            gantry_oci::ClientOptions::default(),
            gantry_oci::Credentials::anonymous().with_docker_config(None)?,
        )?;
        gantry_actions::app::block_on(image.push(&client, &reference))?
            .with_context(|| format!("pushing to {reference}"))?;
    }
    Ok(image.digest().to_string())
}
