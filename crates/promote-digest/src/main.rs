//! `promote-digest` as a binary of its own (the same tool as `gantry promote-digest`).

fn main() -> std::process::ExitCode {
    let root = clap::Command::new("promote-digest").version(env!("CARGO_PKG_VERSION"));
    gantry_actions::app::main(root, &[promote_digest::ENTRY])
}
