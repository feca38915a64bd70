//! What verify-image reports: its outputs, the summary, the vulnerability table.

use std::fmt::Write as _;

use gantry_actions::Outcome;
use gantry_sigstore::Signer;

use crate::gate::Judged;
use crate::tool::Checked;
use crate::vulns;

gantry_actions::outputs! {
    /// The outputs of a verification.
    pub struct Report {
        /// `true` when every image (and with `recursive`, every platform) is proven signed and passes the vulnerability gate, if one was asked for.
        verified: "verified",
        /// The digests verified, one per line, in the order given.
        digest: "digest",
        /// The signer identity of each verified digest, one per line (empty for a key).
        identity: "identity",
        /// The OIDC issuer of each verified digest, one per line (empty for a key).
        issuer: "issuer",
        /// How each signature was stored: `bundle` (cosign v3 referrer) or `legacy-sig` (`.sig` tag), one per line.
        signature_format: "signature-format",
        /// The Rekor log index of each signature, one per line (empty when not logged).
        log_index: "log-index",
        /// How many checks failed: images not proven signed, and images the vulnerability gate refused.
        failed: "failed",
        /// CRITICAL findings counted by the vulnerability gate, over every image (after what was set aside).
        critical: "critical",
        /// HIGH findings counted by the vulnerability gate.
        high: "high",
        /// MEDIUM findings counted by the vulnerability gate.
        medium: "medium",
        /// LOW findings counted by the vulnerability gate.
        low: "low",
        /// NEGLIGIBLE findings (Grype's, below LOW) counted by the vulnerability gate.
        negligible: "negligible",
        /// Findings of UNKNOWN severity counted by the vulnerability gate.
        unknown: "unknown",
    }
}

/// The gate's table in the summary; its refusals join `refusals`; returns counts over every image.
pub(crate) fn vulnerability_section(
    judged: &[Judged],
    summary: &mut String,
    refusals: &mut Vec<String>,
) -> std::collections::BTreeMap<String, usize> {
    let mut totals = std::collections::BTreeMap::new();
    if !judged.is_empty() {
        let _ = writeln!(
            summary,
            "\n### Vulnerabilities\n\n| image | {} | gate |\n|---|{}---|",
            vulns::SEVERITIES.join(" | "),
            "---|".repeat(vulns::SEVERITIES.len())
        );
    }
    for entry in judged {
        let counts = entry
            .verdict
            .as_ref()
            .map(|v| v.counts.clone())
            .unwrap_or_default();
        for (severity, n) in &counts {
            *totals.entry(severity.clone()).or_default() += n;
        }
        let cells: Vec<String> = vulns::SEVERITIES
            .iter()
            .map(|s| {
                counts
                    .get(*s)
                    .map_or_else(|| "–".to_owned(), ToString::to_string)
            })
            .collect();
        let _ = writeln!(
            summary,
            "| `{}` | {} | {} |",
            entry.image,
            cells.join(" | "),
            entry
                .refusal
                .as_deref()
                .map_or_else(|| "✅".to_owned(), |r| format!("❌ {r}"))
        );
        if let Some(refusal) = &entry.refusal {
            refusals.push(refusal.clone());
        }
        if let Some(verdict) = &entry.verdict {
            for aside in &verdict.set_aside {
                let _ = writeln!(summary, "\n- set aside: {aside}");
            }
            for expired in &verdict.expired {
                let _ = writeln!(summary, "\n- ignore entry no longer applies: {expired}");
            }
        }
    }
    totals
}

/// The outcome of a run: outputs, summary, every refusal.
/// One proven digest for the outputs: by its signature, or (attestations only) by its first
/// verified attestation.
struct Proof<'a> {
    digest: String,
    verified: &'a gantry_sigstore::Verified,
    format: String,
}

pub(crate) fn outcome(
    signer: &Signer,
    checked: &[Checked],
    judged: &[Judged],
    signature_required: bool,
) -> Outcome {
    let mut summary = format!(
        "## gantry verify-image\n\nRequired: {}.\n\n| image | result |\n|---|---|\n",
        gantry_sigstore::oci::describe(signer)
    );
    let mut refusals = Vec::new();
    let mut proven = Vec::new();
    for entry in checked {
        match entry {
            Checked::Proven(image, verified) => {
                let by = verified.verified.identity.as_deref().unwrap_or("the key");
                let _ = writeln!(
                    summary,
                    "| `{image}` | ✅ signed by {by} ({}, {}) |",
                    verified.format, verified.signature
                );
                proven.push(Proof {
                    digest: verified.digest.to_string(),
                    verified: &verified.verified,
                    format: verified.format.to_string(),
                });
            }
            Checked::Attested(image, kind, found) => {
                let digest = image.digest().map(ToString::to_string).unwrap_or_default();
                if !signature_required
                    && let Some(first) = found.first()
                    && !proven.iter().any(|p| p.digest == digest)
                {
                    proven.push(Proof {
                        digest,
                        verified: &first.verified,
                        format: "attestation".to_owned(),
                    });
                }
                let _ = writeln!(
                    summary,
                    "| `{image}` | ✅ attestation {kind} ({}) |",
                    found
                        .iter()
                        .map(|a| a.manifest.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Checked::Refused(image, why) => {
                let _ = writeln!(summary, "| `{image}` | ❌ {why} |");
                refusals.push(why.clone());
            }
        }
    }
    let totals = vulnerability_section(judged, &mut summary, &mut refusals);
    let lines = |f: &dyn Fn(&Proof) -> String| proven.iter().map(f).collect::<Vec<_>>().join("\n");
    let count = |severity: &str| {
        if judged.is_empty() {
            String::new()
        } else {
            totals.get(severity).copied().unwrap_or(0).to_string()
        }
    };
    let outcome = if refusals.is_empty() {
        Outcome::success()
    } else {
        Outcome::failed(refusals.join("\n"))
    };
    let report = Report {
        verified: refusals.is_empty().to_string(),
        digest: lines(&|v| v.digest.clone()),
        identity: lines(&|v| v.verified.identity.clone().unwrap_or_default()),
        issuer: lines(&|v| v.verified.issuer.clone().unwrap_or_default()),
        signature_format: lines(&|v| v.format.clone()),
        log_index: lines(&|v| {
            v.verified
                .log_index
                .map(|i| i.to_string())
                .unwrap_or_default()
        }),
        failed: refusals.len().to_string(),
        critical: count("CRITICAL"),
        high: count("HIGH"),
        medium: count("MEDIUM"),
        low: count("LOW"),
        negligible: count("NEGLIGIBLE"),
        unknown: count("UNKNOWN"),
    };
    let headline = if refusals.is_empty() {
        format!(
            "verified {} digest(s): {}",
            proven.len(),
            gantry_sigstore::oci::describe(signer)
        )
    } else {
        format!(
            "{} check(s) failed of {} image(s)",
            refusals.len(),
            checked.len()
        )
    };
    outcome
        .headline(headline)
        .with_outputs(&report)
        .summary(summary)
}
