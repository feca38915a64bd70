//! `gantry`: the multi-call binary; see the library docs.

fn main() -> std::process::ExitCode {
    gantry_actions::app::main(gantry::root_command(), gantry::TOOLS)
}
