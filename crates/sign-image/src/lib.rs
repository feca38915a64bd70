//! `sign-image`: signs images by digest the way cosign v3 does, so `cosign verify` and gantry's
//! `verify-image` accept them: an in-toto statement for the digest in a DSSE envelope, in a
//! Sigstore bundle stored as a referrer of the image (with the fallback tag where the registry has
//! no referrers API).
//!
//! The one decision: a tag is resolved once, and the digest it named is what gets signed and
//! reported; nothing is signed "by tag".

#![warn(missing_docs)]

mod args;
mod report;
mod tool;

pub use args::Args;
pub use report::Report;
pub use tool::{PUBLIC_REKOR, SignImage};

/// The tool's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<SignImage>();
