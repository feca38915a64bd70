//! End-to-end tests: gantry's release binary against real components.

mod canary;
mod container;
mod demo;
mod flow;
mod release;
mod runner;
mod scratch;

use std::path::PathBuf;

/// The static release binary `cargo xtask test` builds and hands over in `GANTRY_DIST_BINARY`.
/// Missing outside CI: a loud skip; with `CI=true`: a failure.
pub fn dist_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GANTRY_DIST_BINARY").map(PathBuf::from) {
        assert!(
            path.is_file(),
            "GANTRY_DIST_BINARY={} is not a file",
            path.display()
        );
        return Some(path);
    }
    assert!(
        !gantry_testkit::in_ci(),
        "GANTRY_DIST_BINARY is not set, and CI=true makes that a failure\nhint: run the tests with `cargo xtask test`, which builds the static binary first"
    );
    gantry_testkit::shout(
        "SKIPPED: GANTRY_DIST_BINARY is not set; run `cargo xtask test` to build the static binary and test it.",
    );
    None
}
