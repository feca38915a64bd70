//! `verify-image` as a binary of its own (the same tool as `gantry verify-image`).

fn main() -> std::process::ExitCode {
    let root = clap::Command::new("verify-image").version(env!("CARGO_PKG_VERSION"));
    gantry_actions::app::main(root, &[verify_image::ENTRY])
}
