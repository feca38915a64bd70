//! The vulnerability gate applied to images: its inputs read before anything else, each image's
//! reports (files that name its digest, or its signed vulnerability attestation) judged.

use gantry_oci::Reference;

use crate::args::GateArgs;
use crate::tool::Checked;
use crate::vulns;

/// The gate's inputs, all read before the registry is touched: bad input changes nothing.
pub(crate) struct GateInputs {
    gate: vulns::Gate,
    /// Each report file with its path.
    reports: Vec<(String, vulns::Report)>,
    /// Read each image's signed vulnerability attestation too.
    attestation: bool,
}

pub(crate) fn inputs(args: &GateArgs) -> anyhow::Result<Option<GateInputs>> {
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
pub(crate) struct Judged {
    pub(crate) image: Reference,
    /// Counts and what was set aside, when a report applied.
    pub(crate) verdict: Option<vulns::Verdict>,
    /// Why the gate failed, if it did.
    pub(crate) refusal: Option<String>,
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
pub(crate) fn judge(inputs: &GateInputs, images: &[Reference], checked: &[Checked]) -> Vec<Judged> {
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
