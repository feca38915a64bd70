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
mod images;
mod registry;
mod signature;
mod signing;

pub use github::{GitHubApiArgs, GitHubTokenArgs};
pub use images::ImagesArgs;
pub use registry::RegistryArgs;
pub use signature::{RootArgs, SignatureArgs, SignerArgs};
pub use signing::{PUBLIC_REKOR, SIGNING_SECRET_INPUTS, SigningArgs};

/// The inputs [`RegistryArgs`] and [`GitHubTokenArgs`] bring that hold secrets: a tool that
/// flattens both masks these (its `ToolSpec::secret_inputs`).
pub const SECRET_INPUTS: &[&str] = &["github-token", "registry-password"];

/// The action defaults those inputs take: the job's token for `github-token`.
pub const ACTION_DEFAULTS: &[(&str, &str)] = &[("github-token", "${{ github.token }}")];

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
    use clap::Parser;

    use super::*;

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
