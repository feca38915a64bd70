//! The `gantry` multi-call binary: `gantry <tool> …` for every tool, each also runnable as a
//! GitHub container action with `--action`, and as a binary (or link) named after the tool.
//!
//! Tools plug in by adding their [`ToolEntry`] to [`TOOLS`]; `cargo xtask generate` reads the same
//! list to write `actions/<tool>/`.

pub mod demo;
pub mod doctor;
pub mod registry;
pub mod verify_bundle;

use gantry_actions::ToolEntry;

/// Every tool the binary runs, in `--help` order.
pub const TOOLS: &[ToolEntry] = &[promote_digest::ENTRY, ToolEntry::of::<doctor::Doctor>()];

/// The root command, before the tools are added.
pub fn root_command() -> clap::Command {
    clap::Command::new("gantry")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Build once, sign, scan, attach an SBOM, promote the digest, watch the canary, roll back.")
        .long_about(
            "Build once, sign, scan, attach an SBOM, promote the digest, watch the canary, roll back.\n\n\
             Every tool runs three ways: `gantry <tool> [ARGS]` on any CI system or a laptop, \
             `gantry <tool> --action` as a GitHub container action (inputs from INPUT_*), and as a \
             binary or link named after the tool.\n\n\
             Exit codes: 0 success, 1 a check failed, 2 usage or infrastructure error.",
        )
        .after_help("Add --json to any tool for machine-readable output. Logging: RUST_LOG=debug.")
        .subcommand(demo::command())
        .subcommand(registry::command())
        .subcommand(verify_bundle::command())
}

/// Runs the subcommands that are not tools.
pub fn run_extra(name: &str, matches: &clap::ArgMatches) -> Option<gantry_actions::ExitStatus> {
    match name {
        "demo" => Some(demo::run(matches)),
        "registry" => Some(registry::run(matches)),
        "verify-bundle" => Some(verify_bundle::run(matches)),
        _ => None,
    }
}
