//! What an image holds, read straight from its layers: OS packages (dpkg, apk, rpm), language
//! packages (npm, Python, Go and Rust binaries, Java archives, .NET), written as CycloneDX 1.6.
//!
//! The one design decision: **nothing is unpacked**. Layers stream through a tar reader that
//! keeps only the files a cataloguer wants (package databases, manifests) and scans binaries as
//! they pass ([`binary`]), recording every other path only so that an upper layer's whiteout,
//! opaque directory or replacement hides what it should ([`Filesystem::apply`]). Memory grows
//! with the package databases, not with the image, and the result is the same whatever order the
//! layers arrive in.
//!
//! ```no_run
//! # fn main() -> Result<(), gantry_sbom::SbomError> {
//! let inventory = gantry_sbom::catalog_rootfs(std::path::Path::new("/srv/rootfs"))?;
//! let subject = gantry_sbom::Subject { kind: "file", name: "rootfs".into(), version: None, purl: None, created: None };
//! let tool = gantry_sbom::Tool { name: "gantry".into(), version: "0.1.0".into() };
//! let json = gantry_sbom::write(&inventory, &subject, &tool);
//! # let _ = json; Ok(()) }
//! ```

#![warn(missing_docs)]

mod binary;
mod catalog;
mod cyclonedx;
mod error;
mod fs;
mod image;
mod layer;
mod license;
mod os;
mod package;
pub mod purl;
mod rootfs;

pub use catalog::{Inventory, catalog};
pub use cyclonedx::{Subject, Tool, write};
pub use error::{Result, SbomError};
pub use fs::{Filesystem, LayerChanges};
pub use image::{ImageError, ImageInventory, ImageOptions, catalog_image};
pub use layer::read_layer;
pub use os::OsRelease;
pub use package::{Ecosystem, Package};
pub use rootfs::{read_rootfs, rootfs};

/// The media type of a CycloneDX JSON document (the artifact type of the SBOM referrer).
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";

/// Catalogues the root filesystem in the directory `root`.
pub fn catalog_rootfs(root: &std::path::Path) -> Result<Inventory> {
    catalog(&rootfs(root)?)
}
