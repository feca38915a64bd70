//! `sbom-attach` as a binary of its own (the same tool as `gantry sbom-attach`).

fn main() -> std::process::ExitCode {
    let root = clap::Command::new("sbom-attach").version(env!("CARGO_PKG_VERSION"));
    gantry_actions::app::main(root, &[sbom_attach::ENTRY])
}
