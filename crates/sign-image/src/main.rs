//! `sign-image` as a binary of its own (the same tool as `gantry sign-image`).

fn main() -> std::process::ExitCode {
    let root = clap::Command::new("sign-image").version(env!("CARGO_PKG_VERSION"));
    gantry_actions::app::main(root, &[sign_image::ENTRY])
}
