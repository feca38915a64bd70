//! `dispatch-integration` as a binary of its own (the same tool as `gantry dispatch-integration`).

fn main() -> std::process::ExitCode {
    let root = clap::Command::new("dispatch-integration").version(env!("CARGO_PKG_VERSION"));
    gantry_actions::app::main(root, &[dispatch_integration::ENTRY])
}
