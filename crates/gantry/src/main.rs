//! `gantry`: the multi-call binary; see the library docs.

fn main() -> std::process::ExitCode {
    gantry_actions::app::main_with(gantry::root_command(), gantry::TOOLS, gantry::run_extra)
}
