//! What sbom-attach reports: its outputs and summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gantry_actions::Outcome;
use gantry_sbom::{Ecosystem, Inventory};

gantry_actions::outputs! {
    /// The outputs of a run (one line per platform manifest, in index order).
    pub struct Report {
        /// The digests the SBOMs describe.
        digest: "digest",
        /// The sha256 of each SBOM document.
        sbom_digest: "sbom-digest",
        /// The referrer manifests holding the SBOMs (empty for a `rootfs`).
        referrer_digest: "referrer-digest",
        /// The referrer manifests holding the signed attestations (empty without `attest`).
        attestation_digest: "attestation-digest",
        /// Packages found, in total.
        packages: "packages",
        /// Packages per ecosystem, as JSON (`{"deb":96,"npm":3}`).
        counts: "counts",
        /// The operating system (`os-release`'s `PRETTY_NAME`).
        os: "os",
    }
}

/// One SBOM made.
pub struct Made {
    /// What it describes (an image digest, or the directory).
    pub subject: String,
    /// The platform, for an index's child.
    pub platform: Option<String>,
    pub inventory: Inventory,
    pub sbom_digest: String,
    pub referrer: Option<String>,
    pub attestation: Option<String>,
    /// Whether the referrer and attestation were already there (nothing added).
    pub already: bool,
}

fn counts(inventory: &Inventory) -> BTreeMap<&'static str, usize> {
    inventory
        .counts()
        .into_iter()
        .map(|(e, n)| (e.name(), n))
        .collect()
}

/// The outcome of a run that made `made`.
pub fn outcome(made: &[Made]) -> Outcome {
    let mut summary = String::from("## gantry sbom-attach\n\n");
    for m in made {
        let os = m
            .inventory
            .os
            .as_ref()
            .and_then(|o| o.pretty_name.clone())
            .unwrap_or_else(|| "no os-release".to_owned());
        let total = m.inventory.packages.len();
        let os_total: usize = m
            .inventory
            .packages
            .iter()
            .filter(|p| p.ecosystem.is_os())
            .count();
        let _ = writeln!(
            summary,
            "### `{}`{}\n\n{os}: {total} packages ({os_total} from the OS, {} from language ecosystems).\n",
            m.subject,
            m.platform
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default(),
            total - os_total
        );
        summary.push_str("| ecosystem | packages |\n|---|---|\n");
        for (ecosystem, n) in m.inventory.counts() {
            let _ = writeln!(summary, "| {} | {n} |", Ecosystem::name(ecosystem));
        }
        let _ = writeln!(summary, "\nSBOM `{}`", m.sbom_digest);
        if let Some(referrer) = &m.referrer {
            let _ = writeln!(
                summary,
                "{}referrer `{referrer}`{}",
                if m.already {
                    "already attached: "
                } else {
                    "attached as "
                },
                m.attestation
                    .as_deref()
                    .map(|a| format!(", signed attestation `{a}`"))
                    .unwrap_or_default()
            );
        }
        summary.push('\n');
    }
    let lines = |f: &dyn Fn(&Made) -> String| made.iter().map(f).collect::<Vec<_>>().join("\n");
    let report = Report {
        digest: lines(&|m| m.subject.clone()),
        sbom_digest: lines(&|m| m.sbom_digest.clone()),
        referrer_digest: lines(&|m| m.referrer.clone().unwrap_or_default()),
        attestation_digest: lines(&|m| m.attestation.clone().unwrap_or_default()),
        packages: lines(&|m| m.inventory.packages.len().to_string()),
        counts: lines(&|m| serde_json::to_string(&counts(&m.inventory)).unwrap_or_default()),
        os: lines(&|m| {
            m.inventory
                .os
                .as_ref()
                .and_then(|o| o.pretty_name.clone())
                .unwrap_or_default()
        }),
    };
    let total: usize = made.iter().map(|m| m.inventory.packages.len()).sum();
    Outcome::success()
        .headline(format!(
            "{} SBOM(s), {total} packages{}",
            made.len(),
            if made.iter().any(|m| m.referrer.is_some()) {
                if made.iter().all(|m| m.already) {
                    ", already attached"
                } else {
                    ", attached"
                }
            } else {
                ""
            }
        ))
        .with_outputs(&report)
        .summary(summary)
}
