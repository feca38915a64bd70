//! `cargo xtask dist`: the static release binary.
//!
//! On x86_64-unknown-linux-gnu the binary links glibc statically (`+crt-static`). Name resolution
//! then must not go through glibc's NSS modules, which a static binary cannot load: reqwest's
//! hickory-dns resolver reads `/etc/hosts` and `/etc/resolv.conf` itself. The result runs in an
//! empty (scratch) root that holds only the binary, a CA bundle and those two files.
//!
//! It is built with cargo-auditable (installed into the target directory on first use), so the
//! binary carries its own dependency list (`.dep-v0`): syft, trivy and gantry's `sbom-attach` list
//! gantry's crates from the image alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

pub const TARGET: &str = "x86_64-unknown-linux-gnu";
pub const PROFILE: &str = "dist";
/// Static glibc, and getrandom calling the `getrandom` syscall directly: its default Linux backend
/// looks the function up with `dlsym`, which finds nothing in a static binary, and then falls back
/// to `/dev/urandom`, which a scratch root does not have.
pub const RUSTFLAGS: &str =
    "-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"";

/// Where `cargo xtask dist` puts the `gantry` binary.
pub fn binary_path(root: &Path) -> PathBuf {
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target_dir.join(TARGET).join(PROFILE).join("gantry")
}

/// The cargo-auditable release the binary is built with.
const CARGO_AUDITABLE: &str = "0.7.7";

/// The directory holding `cargo-auditable`, installed there when missing.
fn cargo_auditable(root: &Path) -> anyhow::Result<PathBuf> {
    let tools = crate::setup::target_dir(root).join("tools");
    let bin = tools.join("bin");
    let installed = Command::new(bin.join("cargo-auditable"))
        .args(["auditable", "--version"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_AUDITABLE));
    if !installed {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "install",
                "--locked",
                "--quiet",
                "--version",
                CARGO_AUDITABLE,
                "cargo-auditable",
                "--root",
            ])
            .arg(&tools)
            .status()
            .context("running cargo install cargo-auditable")?;
        anyhow::ensure!(status.success(), "cargo install cargo-auditable failed");
    }
    Ok(bin)
}

/// Builds the static `gantry` binary and checks that it has no dynamic loader.
pub fn build(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tools = cargo_auditable(root)?;
    let path = std::env::join_paths(std::iter::once(tools).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))?;
    let status = Command::new(cargo)
        .current_dir(root)
        .env("PATH", path)
        .args([
            "auditable",
            "build",
            "--locked",
            "--package",
            "gantry",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
        ])
        .env("RUSTFLAGS", RUSTFLAGS)
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "cargo build of the static binary failed");
    let binary = binary_path(root);
    anyhow::ensure!(
        !has_interpreter(&std::fs::read(&binary)?)?,
        "{} is dynamically linked",
        binary.display()
    );
    Ok(binary)
}

/// Whether an ELF64 little-endian file asks for a dynamic loader (a `PT_INTERP` program header).
pub fn has_interpreter(elf: &[u8]) -> anyhow::Result<bool> {
    const PT_INTERP: u32 = 3;
    anyhow::ensure!(
        elf.get(..4) == Some(b"\x7fELF".as_slice()),
        "not an ELF file"
    );
    anyhow::ensure!(
        elf.get(4) == Some(&2) && elf.get(5) == Some(&1),
        "not a 64-bit little-endian ELF file"
    );
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let phoff = elf
        .get(0x20..0x28)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .context("truncated ELF header")?;
    let entry_size = usize::from(u16_at(0x36).context("truncated ELF header")?);
    let count = usize::from(u16_at(0x38).context("truncated ELF header")?);
    let phoff = usize::try_from(phoff)?;
    for index in 0..count {
        let at = phoff + index * entry_size;
        let kind = elf
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .context("truncated program header")?;
        if kind == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dynamic_executable_has_an_interpreter() {
        let ls = std::fs::read("/bin/ls").expect("read /bin/ls");
        assert!(super::has_interpreter(&ls).expect("parse"));
        assert!(super::has_interpreter(b"#!/bin/sh").is_err());
    }
}
