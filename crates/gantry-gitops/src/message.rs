//! The commit message of a promotion: a subject people read (`promote(staging): billing
//! 1a2b3c4d5e6f → 0f9e8d7c6b5a`) and trailers machines read (`git interpret-trailers --parse`).

use std::fmt::Write as _;

/// What the message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The environment promoted to.
    pub environment: &'a str,
    /// The environment the digest came from.
    pub source_environment: Option<&'a str>,
    /// The image repository (`ghcr.io/acme/billing`); its last segment names the app.
    pub image: &'a str,
    /// The digest written.
    pub digest: &'a str,
    /// The digest the files held before.
    pub previous: Option<&'a str>,
    /// The run that promoted (its page).
    pub run: Option<&'a str>,
}

/// The first 12 hex digits of a digest.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    &hex[..12.min(hex.len())]
}

impl Message<'_> {
    /// The app's name: the repository's last segment.
    pub fn app(&self) -> &str {
        self.image.rsplit('/').next().unwrap_or(self.image)
    }

    /// The whole message: subject, blank line, trailers.
    pub fn text(&self) -> String {
        self.with_verb("promote")
    }

    /// A rollback's message: `rollback(canary): billing <canary12> → <previous12>`, the digest
    /// written back being `digest` and the one rolled back `previous` (also in the trailer
    /// `Gantry-Rolled-Back-From`).
    pub fn rollback_text(&self) -> String {
        let mut text = self.with_verb("rollback");
        if let Some(from) = self.previous {
            let _ = writeln!(text, "Gantry-Rolled-Back-From: {from}");
        }
        text
    }

    fn with_verb(&self, verb: &str) -> String {
        let mut text = format!(
            "{verb}({}): {} {} → {}\n\nGantry-Image: {}\nGantry-Digest: {}\n",
            self.environment,
            self.app(),
            self.previous.map_or("none", short),
            short(self.digest),
            self.image,
            self.digest
        );
        if let Some(previous) = self.previous {
            let _ = writeln!(text, "Gantry-Previous-Digest: {previous}");
        }
        let _ = writeln!(text, "Gantry-Environment: {}", self.environment);
        if let Some(source) = self.source_environment {
            let _ = writeln!(text, "Gantry-Source-Environment: {source}");
        }
        if let Some(run) = self.run {
            let _ = writeln!(text, "Gantry-Run: {run}");
        }
        text
    }
}
