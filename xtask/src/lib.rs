//! Developer tasks behind `cargo xtask`: generating each tool's `action.yml` and README tables from
//! its clap definition, linting the Actions side, and building static release binaries.
//!
//! Generated files are committed and `generate --check` fails CI when they drift: the docs can
//! never disagree with the parser, because both come from the same `Args` struct.

pub mod dist;
pub mod generate;
pub mod lint;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
