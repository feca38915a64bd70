//! A TUF repository written and served by python-tuf, the reference implementation
//! (`python/tuf_repo.py`), so gantry's TUF client is tested against metadata it did not write.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::component::{Service, require_python_module, spawn_announced};

/// A served TUF repository; stopped on drop.
pub struct TufRepository {
    /// The base URL (metadata at the top, targets under `targets/`).
    pub url: String,
    /// The root metadata to trust first.
    pub root: PathBuf,
    /// The folder served: change files here to tamper with what clients fetch.
    pub dir: PathBuf,
    service: Service,
    _tmp: tempfile::TempDir,
}

impl TufRepository {
    /// A repository whose metadata expires in `expires_days` (negative: already expired), with
    /// each of `targets` as a target under its file name; `None` after a loud skip when
    /// python-tuf is missing (a failure with `CI=true`).
    pub fn serve(targets: &[&Path], expires_days: i32) -> Option<Self> {
        let python = require_python_module(
            "tuf.api.metadata",
            "pip install sigstore==4.5.1 (which brings python-tuf)",
        )?;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("repository");
        let mut command = Command::new(python);
        command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/tuf_repo.py"))
            .arg("--out")
            .arg(&dir)
            .arg(format!("--expires-days={expires_days}"))
            .args(targets);
        let (service, url) = spawn_announced(command, &tmp.path().join("tuf.log"))
            .unwrap_or_else(|e| panic!("tuf_repo.py: {e}"));
        Some(Self {
            url,
            root: dir.join("root.json"),
            dir,
            service,
            _tmp: tmp,
        })
    }

    /// The path a target is served from (`targets/<sha256>.<name>`, consistent snapshots).
    pub fn target_file(&self, name: &str) -> PathBuf {
        std::fs::read_dir(self.dir.join("targets"))
            .expect("targets folder")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&format!(".{name}")))
            })
            .unwrap_or_else(|| panic!("no target {name} in {}", self.dir.display()))
    }

    /// Stops serving (the files stay until drop).
    pub fn stop(&mut self) {
        self.service.stop();
    }
}
