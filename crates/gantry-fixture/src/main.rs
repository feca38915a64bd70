//! `gantry-fixture`: a multi-call binary holding only the fixture tool, run by the contract tests.

fn main() -> std::process::ExitCode {
    let root = clap::Command::new("gantry-fixture").version(env!("CARGO_PKG_VERSION"));
    gantry_actions::app::main(root, &[gantry_fixture::ENTRY])
}
