//! `verify-image`: proves that images carry a Sigstore signature from the expected identity or
//! key, in either of cosign's storage formats (v3 bundles as referrers, legacy `.sig` tags), and
//! refuses whatever it cannot prove, saying what it looked for and what it found.
//!
//! The one decision: every image is checked and every failure reported in one run; a single
//! unproven image fails the step.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use gantry_actions::{Branding, Context, Outcome, OutputSpec, Tool, ToolSpec};
use gantry_args::{GitHubTokenArgs, ImagesArgs, RegistryArgs, SignatureArgs};
use gantry_oci::{Client, Reference};
use gantry_sigstore::oci::{
    AttestationVerified, ImageError, ImageVerified, add_legacy_attestations, discover,
    verify_attestations, verify_signature,
};
use gantry_sigstore::{Signer, TrustedRoot};

pub mod vulns;

/// Verify that images carry Sigstore signatures from the expected identity or key.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Args {
    /// The images to verify (a tag is resolved once; its digest is verified).
    #[command(flatten)]
    pub images: ImagesArgs,

    /// Whose signature counts.
    #[command(flatten)]
    pub signature: SignatureArgs,

    /// Attestations the image must carry, signed by the same identity or key: a predicate type
    /// URI, or `slsaprovenance`, `cyclonedx`, `spdx`, `vuln`, `openvex`.
    #[arg(long = "require-attestation", value_name = "TYPE")]
    pub require_attestations: Vec<String>,

    /// The vulnerability gate.
    #[command(flatten)]
    pub gate: GateArgs,

    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// The GitHub token (ghcr.io).
    #[command(flatten)]
    pub github: GitHubTokenArgs,
}

/// The vulnerability gate: what it reads and what fails it.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// Vulnerability reports (Trivy `--format json` or Grype `-o json`) to gate on. A report that
    /// names the image's digest applies to that image; one that names none applies to every image.
    #[arg(long = "vuln-report", value_name = "PATH")]
    pub vuln_reports: Vec<PathBuf>,

    /// Gate on the image's signed vulnerability attestation (cosign's `vuln` predicate, as
    /// `trivy --format cosign-vuln` writes it), verified for the same identity or key; the
    /// newest scan counts. With `vuln-report` too, both sets of findings count.
    #[arg(long)]
    pub vuln_attestation: bool,

    /// A scan older than this fails the gate, as does one that does not say when it ran:
    /// minutes, hours or days, e.g. `24h`, `7d`.
    #[arg(long, value_name = "AGE")]
    pub vuln_max_age: Option<String>,

    /// Severities that fail the gate (comma-separated).
    #[arg(long, value_name = "LIST", default_value = "CRITICAL,HIGH")]
    pub severity: String,

    /// Set aside findings that have no fix yet.
    #[arg(long)]
    pub ignore_unfixed: bool,

    /// Findings to set aside, `.trivyignore` style: one ID per line, optionally `exp:YYYY-MM-DD`
    /// after which the entry no longer applies.
    #[arg(long, value_name = "PATH")]
    pub ignore_file: Option<PathBuf>,

    /// OpenVEX documents: `not_affected` and `fixed` statements for the image (or for every
    /// product) set findings aside.
    #[arg(long = "vex", value_name = "PATH")]
    pub vex: Vec<PathBuf>,
}

pub struct VerifyImage;

/// The tool's entry for a multi-call binary.
pub const ENTRY: gantry_actions::ToolEntry = gantry_actions::ToolEntry::of::<VerifyImage>();

impl Tool for VerifyImage {
    type Args = Args;
    const SPEC: ToolSpec = ToolSpec {
        name: "verify-image",
        description: "Verify that images carry Sigstore signatures from the expected identity or key, in either of cosign's formats.",
        branding: Branding {
            icon: "shield",
            color: "purple",
        },
        outputs: &[
            OutputSpec {
                name: "verified",
                description: "`true` when every image (and with `recursive`, every platform) is proven signed and passes the vulnerability gate, if one was asked for.",
            },
            OutputSpec {
                name: "digest",
                description: "The digests verified, one per line, in the order given.",
            },
            OutputSpec {
                name: "identity",
                description: "The signer identity of each verified digest, one per line (empty for a key).",
            },
            OutputSpec {
                name: "issuer",
                description: "The OIDC issuer of each verified digest, one per line (empty for a key).",
            },
            OutputSpec {
                name: "signature-format",
                description: "How each signature was stored: `bundle` (cosign v3 referrer) or `legacy-sig` (`.sig` tag), one per line.",
            },
            OutputSpec {
                name: "log-index",
                description: "The Rekor log index of each signature, one per line (empty when not logged).",
            },
            OutputSpec {
                name: "failed",
                description: "How many checks failed: images not proven signed, and images the vulnerability gate refused.",
            },
            OutputSpec {
                name: "critical",
                description: "CRITICAL findings counted by the vulnerability gate, over every image (after what was set aside).",
            },
            OutputSpec {
                name: "high",
                description: "HIGH findings counted by the vulnerability gate.",
            },
            OutputSpec {
                name: "medium",
                description: "MEDIUM findings counted by the vulnerability gate.",
            },
            OutputSpec {
                name: "low",
                description: "LOW findings counted by the vulnerability gate.",
            },
            OutputSpec {
                name: "negligible",
                description: "NEGLIGIBLE findings (Grype's, below LOW) counted by the vulnerability gate.",
            },
            OutputSpec {
                name: "unknown",
                description: "Findings of UNKNOWN severity counted by the vulnerability gate.",
            },
        ],
        secret_inputs: &["github-token", "registry-password"],
        action_defaults: &[("github-token", "${{ github.token }}")],
        publish_action: true,
    };

    async fn run(args: Args, _ctx: &Context) -> anyhow::Result<Outcome> {
        verify(args).await
    }
}

/// What verifying one image (or platform) found.
enum Checked {
    Proven(Reference, Box<ImageVerified>),
    /// Attestations of this predicate type verified (at least one).
    Attested(Reference, String, Vec<AttestationVerified>),
    Refused(Reference, String),
}

async fn verify(args: Args) -> anyhow::Result<Outcome> {
    let base = std::path::Path::new(".");
    let policy = args.signature.policy();
    let signer = policy.signer(base)?;
    let gate = gate(&args.gate)?;
    let http = args.registry.http_client()?;
    let root = policy.root(base, &http).await?;
    let attestations: Vec<String> = args
        .require_attestations
        .iter()
        .map(|kind| predicate_type(kind))
        .collect();
    // The gate reads the attestations of the images named, not of each platform.
    let mut top_attestations = attestations.clone();
    if args.gate.vuln_attestation && !attestations.iter().any(|a| a == vulns::VULN_PREDICATE) {
        top_attestations.push(vulns::VULN_PREDICATE.to_owned());
    }
    let images = &args.images.images;
    let client = args
        .registry
        .client(&args.images.references(), args.github.token()?.as_ref())?;
    let mut checked = Vec::new();
    let mut tops = Vec::new();
    for image in images {
        let found = client
            .pinned(image, args.images.recursive)
            .await
            .with_context(|| format!("reading {image}"))?;
        tops.push(found[0].clone());
        for (i, target) in found.into_iter().enumerate() {
            let wanted = if i == 0 {
                &top_attestations
            } else {
                &attestations
            };
            checked.extend(check(&client, target, &signer, &root, wanted).await?);
        }
    }
    let judged: Vec<Judged> = match &gate {
        Some(gate) => judge(gate, &tops, &checked),
        None => Vec::new(),
    };
    Ok(report(&signer, &checked, &judged))
}

/// The gate's inputs, all read before the registry is touched: bad input changes nothing.
struct GateInputs {
    gate: vulns::Gate,
    /// Each report file with its path.
    reports: Vec<(String, vulns::Report)>,
    /// Read each image's signed vulnerability attestation too.
    attestation: bool,
}

fn gate(args: &GateArgs) -> anyhow::Result<Option<GateInputs>> {
    if args.vuln_reports.is_empty() && !args.vuln_attestation {
        if args.ignore_file.is_some()
            || !args.vex.is_empty()
            || args.ignore_unfixed
            || args.vuln_max_age.is_some()
        {
            anyhow::bail!(
                "ignore-file, vex, ignore-unfixed and vuln-max-age shape the vulnerability gate; give what to gate on with --vuln-report or --vuln-attestation"
            );
        }
        return Ok(None);
    }
    let fail_on = args
        .severity
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .map(|s| {
            if vulns::SEVERITIES.contains(&s.as_str()) {
                Ok(s)
            } else {
                Err(anyhow::anyhow!(
                    "--severity {s:?} is not one of {}",
                    vulns::SEVERITIES.join(", ")
                ))
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let reports = args
        .vuln_reports
        .iter()
        .map(|path| vulns::read_report(path).map(|r| (path.display().to_string(), r)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let gate = vulns::Gate {
        fail_on,
        ignore_unfixed: args.ignore_unfixed,
        ignores: match &args.ignore_file {
            Some(path) => vulns::read_ignores(path)?,
            None => Vec::new(),
        },
        vex: args
            .vex
            .iter()
            .map(|path| vulns::read_vex(path))
            .collect::<anyhow::Result<Vec<_>>>()?
            .concat(),
        today: vulns::today(),
        max_age: args
            .vuln_max_age
            .as_deref()
            .map(vulns::parse_max_age)
            .transpose()?,
        now: jiff::Timestamp::now(),
    };
    Ok(Some(GateInputs {
        gate,
        reports,
        attestation: args.vuln_attestation,
    }))
}

/// The vulnerability gate's answer for one image (or a report that fits none).
struct Judged {
    image: Reference,
    /// Counts and what was set aside, when a report applied.
    verdict: Option<vulns::Verdict>,
    /// Why the gate failed, if it did.
    refusal: Option<String>,
}

/// The report in `image`'s newest verified vulnerability attestation (by the scan's time), with
/// where it came from; `None` when none verified (that refusal is reported with the signatures).
fn attested(
    image: &Reference,
    checked: &[Checked],
) -> Option<Result<(String, vulns::Report), String>> {
    let found = checked.iter().find_map(|entry| match entry {
        Checked::Attested(at, kind, found) if at == image && kind == vulns::VULN_PREDICATE => {
            Some(found)
        }
        _ => None,
    })?;
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for attestation in found {
        let what = format!("the vulnerability attestation {}", attestation.manifest);
        match vulns::attested_report(&what, &attestation.statement) {
            Ok(report) => reports.push((what, report)),
            Err(error) => errors.push(format!("{error:#}")),
        }
    }
    Some(
        reports
            .into_iter()
            .max_by_key(|(_, report)| report.scanned_at)
            .ok_or_else(|| errors.join("; ")),
    )
}

/// Each image against the report files that name its digest (or name none), and its signed
/// vulnerability attestation when asked.
fn judge(inputs: &GateInputs, images: &[Reference], checked: &[Checked]) -> Vec<Judged> {
    let gate = &inputs.gate;
    let digest_of = |image: &Reference| image.digest().map(ToString::to_string).unwrap_or_default();
    let mut out = Vec::new();
    for (path, report) in &inputs.reports {
        if !report.digests.is_empty()
            && !images
                .iter()
                .any(|i| report.digests.contains(&digest_of(i)))
        {
            out.push(Judged {
                image: images[0].clone(),
                verdict: None,
                refusal: Some(format!(
                    "vulnerability report {path} ({}) is for {}, not for any image verified ({})",
                    report.scanner,
                    report.digests.join(", "),
                    images.iter().map(digest_of).collect::<Vec<_>>().join(", ")
                )),
            });
        }
    }
    for image in images {
        let digest = digest_of(image);
        let mut refusals = Vec::new();
        let mut applying: Vec<(&str, &vulns::Report)> = inputs
            .reports
            .iter()
            .filter(|(_, r)| r.digests.is_empty() || r.digests.contains(&digest))
            .map(|(path, r)| (path.as_str(), r))
            .collect();
        let from_attestation = if inputs.attestation {
            attested(image, checked)
        } else {
            None
        };
        match &from_attestation {
            Some(Ok((what, report))) => {
                if report.digests.is_empty() || report.digests.contains(&digest) {
                    applying.push((what.as_str(), report));
                } else {
                    refusals.push(format!(
                        "{what} is signed for {digest} but its report scanned {}",
                        report.digests.join(", ")
                    ));
                }
            }
            Some(Err(error)) => refusals.push(error.clone()),
            None => {}
        }
        if applying.is_empty() {
            if refusals.is_empty() {
                refusals.push(format!("no vulnerability report is for {digest}"));
            }
            out.push(Judged {
                image: image.clone(),
                verdict: None,
                refusal: Some(refusals.join("; ")),
            });
            continue;
        }
        refusals.extend(
            applying
                .iter()
                .filter_map(|(what, report)| gate.stale(report, what)),
        );
        let merged = vulns::Report {
            scanner: applying[0].1.scanner,
            digests: vec![digest.clone()],
            findings: applying
                .iter()
                .flat_map(|(_, r)| r.findings.clone())
                .collect(),
            scanned_at: None,
        };
        let verdict = gate.judge(&merged, &digest);
        if !verdict.blocking.is_empty() {
            refusals.push(format!(
                "{} finding(s) at {} in {digest}: {}",
                verdict.blocking.len(),
                gate.fail_on.join(","),
                verdict
                    .blocking
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        out.push(Judged {
            image: image.clone(),
            verdict: Some(verdict),
            refusal: (!refusals.is_empty()).then(|| refusals.join("; ")),
        });
    }
    out
}

/// Predicate types by their usual short names; anything else is taken as a predicate type URI.
fn predicate_type(kind: &str) -> String {
    match kind {
        "slsaprovenance" | "slsa" => "https://slsa.dev/provenance/v1",
        "cyclonedx" => "https://cyclonedx.org/bom",
        "spdx" | "spdxjson" => "https://spdx.dev/Document",
        "vuln" => vulns::VULN_PREDICATE,
        "openvex" => "https://openvex.dev/ns",
        other => other,
    }
    .to_owned()
}

/// The signature, then each required attestation. A refusal is a result; a registry that cannot
/// be read is an error (exit 2).
async fn check(
    client: &Client,
    image: Reference,
    signer: &Signer,
    root: &TrustedRoot,
    attestations: &[String],
) -> anyhow::Result<Vec<Checked>> {
    let found = match discover(client, &image).await {
        Ok(mut discovery) if !attestations.is_empty() => {
            add_legacy_attestations(client, &image, &mut discovery)
                .await
                .map(|()| discovery)
        }
        other => other,
    };
    let discovery = match found {
        Ok(discovery) => discovery,
        Err(ImageError::Registry(error)) => {
            return Err(
                anyhow::Error::new(error).context(format!("reading the signatures of {image}"))
            );
        }
        Err(refusal) => return Ok(vec![Checked::Refused(image, refusal.to_string())]),
    };
    let mut out = vec![match verify_signature(&image, &discovery, signer, root) {
        Ok(verified) => Checked::Proven(image.clone(), Box::new(verified)),
        Err(refusal) => Checked::Refused(image.clone(), refusal.to_string()),
    }];
    for kind in attestations {
        out.push(
            match verify_attestations(&image, &discovery, kind, signer, root) {
                Ok(found) => Checked::Attested(image.clone(), kind.clone(), found),
                Err(refusal) => Checked::Refused(image.clone(), refusal.to_string()),
            },
        );
    }
    Ok(out)
}

/// The gate's table in the summary; its refusals join `refusals`; returns counts over every image.
fn vulnerability_section(
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

fn report(signer: &Signer, checked: &[Checked], judged: &[Judged]) -> Outcome {
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
                proven.push(verified.as_ref());
            }
            Checked::Attested(image, kind, found) => {
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
    let lines = |f: &dyn Fn(&ImageVerified) -> String| {
        proven.iter().map(|v| f(v)).collect::<Vec<_>>().join("\n")
    };
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
    outcome
        .output("verified", refusals.is_empty().to_string())
        .output("digest", lines(&|v| v.digest.to_string()))
        .output(
            "identity",
            lines(&|v| v.verified.identity.clone().unwrap_or_default()),
        )
        .output(
            "issuer",
            lines(&|v| v.verified.issuer.clone().unwrap_or_default()),
        )
        .output("signature-format", lines(&|v| v.format.to_string()))
        .output(
            "log-index",
            lines(&|v| {
                v.verified
                    .log_index
                    .map(|i| i.to_string())
                    .unwrap_or_default()
            }),
        )
        .output("failed", refusals.len().to_string())
        .output("critical", count("CRITICAL"))
        .output("high", count("HIGH"))
        .output("medium", count("MEDIUM"))
        .output("low", count("LOW"))
        .output("negligible", count("NEGLIGIBLE"))
        .output("unknown", count("UNKNOWN"))
        .summary(summary)
}
