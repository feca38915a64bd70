//! Registry access that is exact: references, auth, verified reads, digest-preserving copies and
//! referrers.
//!
//! Everything gantry does moves or reads images by digest, so this crate never re-serialises a
//! manifest (it pushes the bytes it fetched), checks every body it reads against its digest, and
//! orders copies so that a tag never points at something incomplete. It speaks the distribution
//! protocol directly on reqwest rather than through `oci-client`: measured on distribution 2.8, a
//! same-repository re-tag costs oci-client 5 requests (three `GET /v2/` auth probes) against 2
//! here, its mount treats a 202 as an error, and its referrers listing fails open.

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod copy;
pub mod digest;
mod engine;
pub mod error;
pub mod image;
pub mod manifest;
pub mod reference;
pub mod referrers;

pub use auth::{Credential, Credentials};
pub use client::Client;
pub use copy::{CopyOptions, CopyReport};
pub use digest::Digest;
pub use engine::{ClientOptions, Counts, RequestRecord, Scope, is_loopback_host};
pub use error::{OciError, Result};
pub use image::{ImageConfig, ImageFile, ScratchImage};
pub use manifest::{Descriptor, Manifest};
pub use reference::Reference;
pub use referrers::{Artifact, ArtifactLayer, Referrers, ReferrersSource};
