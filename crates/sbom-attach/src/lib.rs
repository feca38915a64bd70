//! `sbom-attach`: a CycloneDX 1.6 SBOM of an image, read straight from the registry (no Docker
//! daemon, no copy of the image on disk), attached to the image as an OCI referrer and as a
//! signed in-toto attestation that `cosign verify-attestation --type cyclonedx` and gantry's
//! `verify-image --require-attestation cyclonedx` accept.
//!
//! The one decision: the SBOM is a pure function of the image's content (byte-identical for the
//! same image, gantry version and options), so attaching it again adds nothing, and a verifier
//! can rebuild it and compare.

#![warn(missing_docs)]

mod args;
mod report;
mod tool;

pub use args::Args;
pub use gantry_sbom::CYCLONEDX_JSON as CYCLONEDX_MEDIA_TYPE;
pub use report::Report;
pub use tool::{CYCLONEDX_PREDICATE, SbomAttach};

/// The tool's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<SbomAttach>();
