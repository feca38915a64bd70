//! `verify-image`: proves that images carry a Sigstore signature from the expected identity or
//! key, in either of cosign's storage formats (v3 bundles as referrers, legacy `.sig` tags), and
//! refuses whatever it cannot prove, saying what it looked for and what it found.
//!
//! The one decision: every image is checked and every failure reported in one run; a single
//! unproven image fails the step.

#![warn(missing_docs)]

mod args;
mod gate;
mod report;
mod tool;
pub mod vulns;

pub use args::{Args, GateArgs};
pub use report::Report;
pub use tool::VerifyImage;

/// The tool's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<VerifyImage>();
