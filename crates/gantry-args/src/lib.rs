//! The clap argument structs every gantry tool shares, in one place (as uv keeps every clap
//! struct in uv-cli): registry access ([`RegistryArgs`]), the images a tool works on
//! ([`ImagesArgs`]), whose signature counts ([`SignatureArgs`]), how a tool signs
//! ([`SigningArgs`]) and the GitHub token and API
//! ([`GitHubTokenArgs`], [`GitHubApiArgs`]).
//!
//! The one decision: libraries take plain types, never clap structs, so a library never depends
//! on clap or anyhow; a tool flattens these structs into its `Args` and asks them for the library
//! types (`RegistryArgs::client`, `SignatureArgs::policy`). A flag's long name is its action
//! input's name, so every tool that flattens a struct has the same inputs for the same things.
//!
//! ```
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     images: gantry_args::ImagesArgs,
//!     #[command(flatten)]
//!     registry: gantry_args::RegistryArgs,
//! }
//! let args = Args::parse_from(["tool", "--image", "ghcr.io/acme/app:v1", "--insecure-registry", "10.0.0.5:5000"]);
//! assert_eq!(args.images.images[0].to_string(), "ghcr.io/acme/app:v1");
//! ```

#![warn(missing_docs)]

mod github;
mod gitops;
mod images;
mod registry;
mod signature;
mod signing;

pub use github::{GitHubApiArgs, GitHubTokenArgs};
pub use gitops::{GITOPS_SECRET_INPUTS, GitOpsArgs};
pub use images::ImagesArgs;
pub use registry::RegistryArgs;
pub use signature::{RootArgs, SignatureArgs, SignerArgs};
pub use signing::{PUBLIC_REKOR, SIGNING_SECRET_INPUTS, SigningArgs};

/// The inputs [`RegistryArgs`] and [`GitHubTokenArgs`] bring that hold secrets: a tool that
/// flattens both masks these (its `ToolSpec::secret_inputs`).
pub const SECRET_INPUTS: &[&str] = &["github-token", "registry-password"];

/// The action defaults those inputs take: the job's token for `github-token`.
pub const ACTION_DEFAULTS: &[(&str, &str)] = &[("github-token", "${{ github.token }}")];

/// A duration on the command line: `90` (seconds), `90s`, `30m`, `2h`, `1h30m`, `250ms`. Zero is
/// refused: every duration a tool takes bounds something.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration (such as 250ms, 90s, 30m, 2h, 1h30m)");
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return (seconds > 0)
            .then(|| std::time::Duration::from_secs(seconds))
            .ok_or_else(bad);
    }
    let mut total_ms = 0u64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit_ms, unit_len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.chars().next() {
                Some('s') => (1_000, 1),
                Some('m') => (60_000, 1),
                Some('h') => (3_600_000, 1),
                _ => return Err(bad()),
            }
        };
        rest = &rest[unit_len..];
        total_ms = value
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(bad)?;
    }
    if total_ms == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_millis(total_ms))
}

/// A secret given as a value (a flag or its environment variable) or as a file (`file_flag`
/// names the file's flag in messages): the value, else the file's content with trailing newlines
/// cut; `None` when neither was given. Every secret flag pair of every tool reads through here.
pub fn secret(
    value: Option<&gantry_secret::Secret>,
    file: Option<&std::path::Path>,
    file_flag: &str,
) -> anyhow::Result<Option<gantry_secret::Secret>> {
    if let Some(value) = value {
        return Ok(Some(value.clone()));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--{file_flag} {}: {e}", path.display()))?;
    let value = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !value.is_empty(),
        "--{file_flag} {} is empty, expected the secret",
        path.display()
    );
    Ok(Some(gantry_secret::Secret::new(value)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m500ms"), Ok(Duration::from_millis(60_500)));
        for bad in ["", "0", "0s", "5x", "m", "10m5", "1.5h", "ms", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        github: GitHubTokenArgs,
        #[command(flatten)]
        registry: RegistryArgs,
    }

    #[test]
    fn a_token_comes_from_the_flag_or_a_file_never_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "ghs_from_file\n").expect("write");
        let args = Args::parse_from(["t", "--github-token-file", file.to_str().expect("utf8")]);
        assert_eq!(
            args.github.token().expect("read").expect("some").expose(),
            "ghs_from_file"
        );
        let flag = Args::parse_from(["t", "--github-token", "ghs_flag"]);
        assert_eq!(
            flag.github.token().expect("ok").expect("some").expose(),
            "ghs_flag"
        );
        let both = Args::try_parse_from(["t", "--github-token", "x", "--github-token-file", "y"]);
        assert!(both.is_err(), "one source at a time");
        std::fs::write(&file, "\n").expect("write");
        let empty = Args::parse_from(["t", "--github-token-file", file.to_str().expect("utf8")]);
        let err = empty.github.token().expect_err("empty");
        assert!(err.to_string().contains("is empty"), "{err}");
    }
}
