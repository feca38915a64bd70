//! `canary-watch`: watches a canary on a fixed-rate tick, decides on its own to roll it back to
//! the previous digest, and says why.
//!
//! The decision engine ([`decide`]) is a pure function of the sequence of tick verdicts and the
//! limits, so that it can be stated as a truth table, checked against a reference model over every
//! sequence, and replayed from the `measurements` record of a watch. The watch loop ([`watch`])
//! feeds it: fixed-rate ticks, warm-up, checks bounded by the probe timeout, a control probe that
//! turns a tick's failures into errors, a guard that stops the watch when someone else moves the
//! tag. The rollback ([`rollback`]) is prepared before the first tick (the previous manifest kept,
//! push permission proven) so that acting on a decision is three registry requests; it is
//! recorded as GitHub Deployments and announced by webhook only after the tag moved.

#![warn(missing_docs)]

mod args;
pub mod decide;
pub mod http;
pub mod notify;
mod plan;
pub mod prometheus;
pub mod record;
pub mod redeploy;
mod report;
pub mod rollback;
mod tool;
mod verdict;
pub mod watch;

pub use args::{Args, NoData, OnCancel, OnErrorArg, WebhookFormat};
pub use report::Report;
pub use tool::CanaryWatch;

/// The tool's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<CanaryWatch>();
