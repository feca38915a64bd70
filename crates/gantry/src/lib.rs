//! The `gantry` multi-call binary: `gantry <tool> …` for every tool, each also runnable as a
//! GitHub container action with `--action`, and as a binary (or link) named after the tool.
//!
//! Tools plug in by adding their [`ToolEntry`] to [`TOOLS`]; `cargo xtask generate` reads the same
//! list to write `actions/<tool>/`.

#![warn(missing_docs)]

pub mod demo;
pub mod doctor;
pub mod registry;
pub mod verify_bundle;

use gantry_actions::ToolEntry;

/// Every tool the binary runs, in `--help` order.
pub const TOOLS: &[ToolEntry] = &[
    sign_image::ENTRY,
    verify_image::ENTRY,
    promote_digest::ENTRY,
    sbom_attach::ENTRY,
    dispatch_integration::ENTRY,
    canary_watch::ENTRY,
    ToolEntry::of::<doctor::Doctor>(),
];

/// The root command, before the tools are added.
pub fn root_command() -> clap::Command {
    clap::Command::new("gantry")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Build once, sign, scan, attach an SBOM, promote the digest, watch the canary, roll back.")
        .long_about(
            "Build once, sign, scan, attach an SBOM, promote the digest, watch the canary, roll back.\n\n\
             The tools: sign-image, verify-image (signatures, attestations and a vulnerability \
             gate), sbom-attach (CycloneDX SBOMs), promote-digest (registry tags, or a GitOps \
             repository by commit or pull request, Argo CD waited for), dispatch-integration (the \
             integration repository's verdict on a digest) and canary-watch (the canary watched, \
             rolled back on its own).\n\n\
             Every tool runs three ways: `gantry <tool> [ARGS]` on any CI system or a laptop, \
             `gantry <tool> --action` as a GitHub container action (inputs from INPUT_*), and as a \
             binary or link named after the tool.\n\n\
             Exit codes: 0 success, 1 a check failed, 2 usage or infrastructure error.",
        )
        .after_help("Add --json to any tool (and to verify-bundle) for machine-readable output. Logging: RUST_LOG=debug.")
        .subcommand(demo::command())
        .subcommand(registry::command())
        .subcommand(verify_bundle::command())
}

/// Runs `run` with its arguments taken from `matches` (exit 2 with clap's message when they
/// cannot be).
fn with_args<T: clap::FromArgMatches>(
    matches: &clap::ArgMatches,
    run: fn(T) -> gantry_actions::ExitStatus,
) -> gantry_actions::ExitStatus {
    match T::from_arg_matches(matches) {
        Ok(args) => run(args),
        Err(error) => {
            let _ = error.print();
            gantry_actions::ExitStatus::Error
        }
    }
}

/// Runs the subcommands that are not tools.
pub fn run_extra(name: &str, matches: &clap::ArgMatches) -> Option<gantry_actions::ExitStatus> {
    match name {
        "demo" => Some(with_args(matches, demo::run)),
        "registry" => Some(with_args(matches, registry::run)),
        "verify-bundle" => Some(with_args(matches, verify_bundle::run)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input that takes a secret is masked before the action runs: a tool that forgets to
    /// list one in its `secret_inputs` would leave its value printable in the job's log.
    #[test]
    fn every_secret_input_is_masked() {
        for entry in TOOLS {
            let command = entry.command();
            for arg in command.get_arguments() {
                let secret = arg
                    .get_value_names()
                    .is_some_and(|names| names.iter().any(|n| n.as_str() == "SECRET"));
                let Some(long) = arg.get_long() else { continue };
                if secret {
                    assert!(
                        entry.spec.secret_inputs.contains(&long),
                        "{}: --{long} takes a secret but is not in secret_inputs",
                        entry.spec.name
                    );
                }
            }
        }
    }
}
