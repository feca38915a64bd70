//! `promote-digest`: points an environment at a digest that already passed the environment before
//! it, without rebuilding, along the paths a policy allows.
//!
//! The one decision: a promotion moves a digest, never a tag's current value. The source
//! environment must point at exactly the digest being promoted, so no stage can be skipped and no
//! image that did not pass the earlier stage can arrive.

#![warn(missing_docs)]

mod args;
mod gates;
mod github;
mod gitops;
mod report;
mod tool;

pub use args::Args;
/// The promotion policy, shared with canary-watch.
pub use gantry_policy as policy;
pub use report::{Refusal, Report};
pub use tool::PromoteDigest;

/// The tool's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<PromoteDigest>();
