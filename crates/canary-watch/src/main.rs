//! `canary-watch` as a binary of its own (the same tool as `gantry canary-watch`).

fn main() -> std::process::ExitCode {
    let root = clap::Command::new("canary-watch").version(env!("CARGO_PKG_VERSION"));
    gantry_actions::app::main(root, &[canary_watch::ENTRY])
}
