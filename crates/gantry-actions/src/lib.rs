//! The runner contract, and the only crate that reads `INPUT_*` and `GITHUB_*`.
//!
//! Every gantry tool is a clap `Args` struct plus an async `run` returning an [`Outcome`]. This crate
//! gives each tool its two front ends over that one parser: a command line (`gantry <tool> …`, with
//! `--json`), and a GitHub container action (`--action`), which turns `INPUT_*` variables into argv
//! for the same parser and writes `GITHUB_OUTPUT`, the step summary, annotations and masks by the
//! runner's rules. Library crates never learn that they run inside Actions.

#![warn(missing_docs)]

pub mod app;
pub mod commands;
pub mod context;
pub mod env;
pub mod files;
pub mod inputs;
pub mod isolated;
pub mod logging;
pub mod output;
pub mod outputs;
pub mod signals;
pub mod tool;

pub use commands::{Annotation, Commands, Level};
pub use context::{GitHubContext, OidcError};
pub use gantry_secret::Secret;
pub use outputs::Outputs;
pub use signals::Signals;
pub use tool::{
    Branding, Context, ExitStatus, Mode, Outcome, OutputSpec, Tool, ToolEntry, ToolSpec,
};
