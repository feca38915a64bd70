//! `dispatch-integration`: the service repository asks the integration repository to test one
//! exact digest and waits for the verdict; the integration repository reports the verdict back.
//!
//! The caller finds the run it started exactly: by the id GitHub returns (since 2026-02-19), else
//! by a correlation id the receiving workflow puts in its `run-name`. It never dispatches twice,
//! waits with conditional requests (a 304 is free), cancels the remote run when it is cancelled
//! itself or times out, and brings back the conclusion, the failed jobs' log tails and the
//! integration run's `gantry-verdict.json`.
//!
//! The reporter (`dispatch-integration report`) runs last in the integration workflow: it reads
//! the run's job results (and a `JUnit` or TRX file), writes `gantry-verdict.json`, and sets a
//! commit status and a deployment to `integration` on the service repository's commit, so the
//! verdict arrives even when no caller waits.

#![warn(missing_docs)]

mod args;
mod caller;
mod correlation;
mod payload;
mod report;
mod reporter;
mod tool;
mod verdict;

pub use args::{Args, Command};
pub use correlation::{correlation_id, title_names};
pub use payload::{Payload, PayloadError, RESERVED as PAYLOAD_INPUTS};
pub use report::Report;
pub use reporter::{ENVIRONMENT, status_context};
pub use tool::DispatchIntegration;
pub use verdict::{Tests, VERDICT_FILE, VERDICT_JSON_SCHEMA, VERDICT_LIMIT, Verdict};

/// The tool's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<DispatchIntegration>();
