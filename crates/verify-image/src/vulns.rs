//! The vulnerability gate: findings from a Trivy or Grype JSON report (a file, or the report inside
//! a signed vulnerability attestation), less what an ignore file (with expiry dates) or OpenVEX
//! statements set aside, counted by severity; the gate fails on the
//! severities asked for and lists every finding that failed it, not just the first.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

/// Severities from most to least severe, as Trivy writes them (Grype's are title-case).
/// Severities from most to least severe: Trivy's five, and Grype's NEGLIGIBLE, which Grype ranks
/// below LOW (not LOW itself).
pub const SEVERITIES: [&str; 6] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNKNOWN"];

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The vulnerability id (CVE, GHSA, …).
    pub id: String,
    /// The package it was found in.
    pub package: String,
    /// The installed version.
    pub version: String,
    /// The versions the scanner names as fixing it (may be set even when it is not fixed).
    pub fixed_in: String,
    /// Whether the scanner says a fix exists, by its own rule: Trivy's `Status == "fixed"`,
    /// Grype's `fix.state == "fixed"` (where a report lacks the field, a fixed version counts).
    pub fixed: bool,
    /// Upper-case: one of [`SEVERITIES`].
    pub severity: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {} {}",
            self.id, self.severity, self.package, self.version
        )?;
        if self.fixed {
            write!(f, ", fixed in {})", self.fixed_in)
        } else {
            f.write_str(", no fix)")
        }
    }
}

/// A scanner's report: which scanner, which image it names (if any), what it found.
#[derive(Debug, Clone)]
pub struct Report {
    /// `Trivy` or `Grype`.
    pub scanner: &'static str,
    /// Manifest digests the report says it scanned (`sha256:…`); empty when it names none.
    pub digests: Vec<String>,
    /// Every finding, in the report's order.
    pub findings: Vec<Finding>,
    /// When the scan ran, if the report says.
    pub scanned_at: Option<jiff::Timestamp>,
}

/// A scanner's severity, upper-cased; anything not in [`SEVERITIES`] is UNKNOWN.
fn severity(text: &str) -> String {
    let upper = text.to_ascii_uppercase();
    if SEVERITIES.contains(&upper.as_str()) {
        upper
    } else {
        "UNKNOWN".to_owned()
    }
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn digest_of(repo_digest: &str) -> Option<String> {
    repo_digest
        .rsplit_once('@')
        .map(|(_, d)| d)
        .or(Some(repo_digest))
        .filter(|d| d.starts_with("sha256:"))
        .map(str::to_owned)
}

fn timestamp(value: &Value, pointer: &str) -> Option<jiff::Timestamp> {
    value.pointer(pointer)?.as_str()?.parse().ok()
}

/// Reads a Trivy (`--format json`) or Grype (`-o json`) report file.
pub fn read_report(path: &Path) -> anyhow::Result<Report> {
    let what = path.display();
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {what}"))?,
    )
    .with_context(|| format!("{what} is not JSON"))?;
    parse_report(&what.to_string(), &json)
}

/// The predicate type of cosign's vulnerability attestation.
pub const VULN_PREDICATE: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

/// The report inside a vulnerability attestation's in-toto `statement` (cosign's `vuln` predicate,
/// as `trivy --format cosign-vuln` writes it): `scanner.result` holds the scanner's JSON report,
/// `metadata.scanFinishedOn` when the scan ended.
pub fn attested_report(what: &str, statement: &Value) -> anyhow::Result<Report> {
    let predicate = &statement["predicate"];
    let result = predicate.pointer("/scanner/result").ok_or_else(|| {
        anyhow::anyhow!(
            "{what} has no predicate.scanner.result (expected cosign's vuln predicate, as trivy --format cosign-vuln writes it)"
        )
    })?;
    let mut report = parse_report(what, result)?;
    if let Some(finished) = timestamp(predicate, "/metadata/scanFinishedOn") {
        report.scanned_at = Some(finished);
    }
    Ok(report)
}

/// A Trivy or Grype JSON report, told apart by its shape.
pub fn parse_report(what: &str, json: &Value) -> anyhow::Result<Report> {
    // A clean image's Trivy report may have no Results, but always a SchemaVersion.
    if json.get("Results").is_some() || json.get("SchemaVersion").is_some() {
        let mut findings = Vec::new();
        for result in json["Results"].as_array().into_iter().flatten() {
            for v in result["Vulnerabilities"].as_array().into_iter().flatten() {
                let fixed_in = text(v, "/FixedVersion");
                findings.push(Finding {
                    id: text(v, "/VulnerabilityID"),
                    package: text(v, "/PkgName"),
                    version: text(v, "/InstalledVersion"),
                    fixed: v
                        .get("Status")
                        .and_then(Value::as_str)
                        .map_or(!fixed_in.is_empty(), |status| status == "fixed"),
                    fixed_in,
                    severity: severity(&text(v, "/Severity")),
                });
            }
        }
        let digests = json
            .pointer("/Metadata/RepoDigests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(digest_of)
            .collect();
        return Ok(Report {
            scanner: "Trivy",
            digests,
            findings,
            scanned_at: timestamp(json, "/CreatedAt"),
        });
    }
    if let Some(matches) = json.get("matches").and_then(Value::as_array) {
        let findings = matches
            .iter()
            .map(|m| {
                let fixed_in = m
                    .pointer("/vulnerability/fix/versions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                Finding {
                    id: text(m, "/vulnerability/id"),
                    package: text(m, "/artifact/name"),
                    version: text(m, "/artifact/version"),
                    fixed: m
                        .pointer("/vulnerability/fix/state")
                        .and_then(Value::as_str)
                        .map_or(!fixed_in.is_empty(), |state| state == "fixed"),
                    fixed_in,
                    severity: severity(&text(m, "/vulnerability/severity")),
                }
            })
            .collect();
        let target = json.pointer("/source/target").cloned().unwrap_or_default();
        let mut digests: Vec<String> = target["repoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(digest_of)
            .collect();
        if let Some(manifest) = target["manifestDigest"].as_str().and_then(digest_of) {
            digests.push(manifest);
        }
        return Ok(Report {
            scanner: "Grype",
            digests,
            findings,
            scanned_at: timestamp(json, "/descriptor/timestamp"),
        });
    }
    anyhow::bail!(
        "{what} is neither a Trivy JSON report (Results) nor a Grype JSON report (matches)"
    )
}

/// An ignore file entry: `.trivyignore` lines, `ID [exp:YYYY-MM-DD]`, `#` comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    /// The vulnerability id.
    pub id: String,
    /// The day after which the entry no longer applies.
    pub expires: Option<jiff::civil::Date>,
    /// Its line in the file.
    pub line: usize,
}

/// Reads an ignore file; a malformed line is an error naming it.
pub fn read_ignores(path: &Path) -> anyhow::Result<Vec<Ignore>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let id = words.next().unwrap_or_default().to_owned();
        let mut expires = None;
        for word in words {
            let Some(date) = word.strip_prefix("exp:") else {
                anyhow::bail!(
                    "{}:{}: unexpected {word:?} (expected `ID` or `ID exp:YYYY-MM-DD`)",
                    path.display(),
                    index + 1
                );
            };
            let parsed = date
                .parse::<jiff::civil::Date>()
                .ok()
                .filter(|_| date.len() == 10)
                .with_context(|| {
                    format!(
                        "{}:{}: {date:?} is not a date (YYYY-MM-DD)",
                        path.display(),
                        index + 1
                    )
                })?;
            expires = Some(parsed);
        }
        out.push(Ignore {
            id,
            expires,
            line: index + 1,
        });
    }
    Ok(out)
}

/// Today in UTC.
pub fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// A scan's maximum age: a whole number of minutes (`m`), hours (`h`) or days (`d`).
pub fn parse_max_age(text: &str) -> anyhow::Result<jiff::SignedDuration> {
    let bad = || {
        anyhow::anyhow!(
            "--vuln-max-age {text:?} is not a number followed by m, h or d (e.g. 24h, 7d)"
        )
    };
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let minutes = match unit {
        "m" => 1,
        "h" => 60,
        "d" => 24 * 60,
        _ => return Err(bad()),
    };
    if number <= 0 {
        return Err(bad());
    }
    Ok(jiff::SignedDuration::from_mins(number * minutes))
}

/// OpenVEX statements that set a vulnerability aside for a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VexStatement {
    /// The vulnerability id.
    pub vulnerability: String,
    /// `not_affected`, `fixed`, `affected` or `under_investigation`.
    pub status: String,
    /// Product identifiers (`@id`, purls); empty: every product.
    pub products: Vec<String>,
    /// Why, for `not_affected`.
    pub justification: String,
}

/// Reads the statements of an OpenVEX document.
pub fn read_vex(path: &Path) -> anyhow::Result<Vec<VexStatement>> {
    let what = path.display();
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {what}"))?,
    )
    .with_context(|| format!("{what} is not JSON"))?;
    let context = text(&json, "/@context");
    if !context.starts_with("https://openvex.dev/ns") {
        anyhow::bail!("{what} is not an OpenVEX document (@context is {context:?})");
    }
    let mut out = Vec::new();
    for statement in json["statements"].as_array().into_iter().flatten() {
        let vulnerability = statement
            .pointer("/vulnerability/name")
            .or_else(|| statement.pointer("/vulnerability/@id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut products = Vec::new();
        for product in statement["products"].as_array().into_iter().flatten() {
            products.extend(
                [
                    product.pointer("/@id"),
                    product.pointer("/identifiers/purl"),
                ]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned),
            );
        }
        out.push(VexStatement {
            vulnerability,
            status: text(statement, "/status"),
            products,
            justification: text(statement, "/justification"),
        });
    }
    Ok(out)
}

/// What the gate asks.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Upper-case severities that fail the gate.
    pub fail_on: Vec<String>,
    /// Set aside findings without a fix.
    pub ignore_unfixed: bool,
    /// Ignore file entries.
    pub ignores: Vec<Ignore>,
    /// OpenVEX statements.
    pub vex: Vec<VexStatement>,
    /// Today (UTC), for the ignore entries' dates.
    pub today: jiff::civil::Date,
    /// Reports whose scan is older than this (or does not say when it ran) fail.
    pub max_age: Option<jiff::SignedDuration>,
    /// Now, for the scans' ages.
    pub now: jiff::Timestamp,
}

/// What the gate decided for one image.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Counted findings by severity (after what was set aside).
    pub counts: BTreeMap<String, usize>,
    /// Findings at a failing severity.
    pub blocking: Vec<Finding>,
    /// Why findings were set aside: `ID: reason`.
    pub set_aside: Vec<String>,
    /// Ignore entries past their date (they set nothing aside).
    pub expired: Vec<String>,
}

impl Gate {
    /// Why `report` (from `what`) is too old to gate on, if it is.
    pub fn stale(&self, report: &Report, what: &str) -> Option<String> {
        let max_age = self.max_age?;
        let Some(scanned) = report.scanned_at else {
            return Some(format!(
                "{what} ({}) does not say when the scan ran, and --vuln-max-age {} needs to know",
                report.scanner,
                friendly(max_age)
            ));
        };
        let age = self.now.duration_since(scanned);
        (age > max_age).then(|| {
            format!(
                "{what} ({}) is a scan from {scanned}, {} old; the most allowed is {}",
                report.scanner,
                friendly(age),
                friendly(max_age)
            )
        })
    }

    /// Applies the gate to `report` for the image `digest`.
    pub fn judge(&self, report: &Report, digest: &str) -> Verdict {
        let mut verdict = Verdict::default();
        for severity in SEVERITIES {
            verdict.counts.insert(severity.to_owned(), 0);
        }
        for ignore in &self.ignores {
            if let Some(date) = ignore.expires.as_ref().filter(|d| **d < self.today) {
                verdict.expired.push(format!(
                    "{} (expired {date}, line {})",
                    ignore.id, ignore.line
                ));
            }
        }
        let hex = digest.trim_start_matches("sha256:");
        for finding in &report.findings {
            if let Some(reason) = self.set_aside(finding, hex) {
                verdict.set_aside.push(format!("{}: {reason}", finding.id));
                continue;
            }
            *verdict.counts.entry(finding.severity.clone()).or_default() += 1;
            if self.fail_on.contains(&finding.severity) {
                verdict.blocking.push(finding.clone());
            }
        }
        verdict
    }

    fn set_aside(&self, finding: &Finding, hex: &str) -> Option<String> {
        if self.ignore_unfixed && !finding.fixed {
            return Some("no fix yet (ignore-unfixed)".to_owned());
        }
        if let Some(ignore) = self
            .ignores
            .iter()
            .find(|i| i.id == finding.id && i.expires.as_ref().is_none_or(|d| *d >= self.today))
        {
            return Some(match &ignore.expires {
                Some(date) => format!("ignore file line {}, until {date}", ignore.line),
                None => format!("ignore file line {}", ignore.line),
            });
        }
        self.vex
            .iter()
            .find(|s| {
                s.vulnerability == finding.id
                    && matches!(s.status.as_str(), "not_affected" | "fixed")
                    && (s.products.is_empty() || s.products.iter().any(|p| p.contains(hex)))
            })
            .map(|s| {
                let mut reason = format!("OpenVEX {}", s.status);
                if !s.justification.is_empty() {
                    let _ = write!(reason, " ({})", s.justification);
                }
                reason
            })
    }
}

/// A duration in whole days, hours or minutes, as a person reads it: exact when it is a whole
/// number of days or hours, else rounded down to the largest unit that leaves at least two.
fn friendly(duration: jiff::SignedDuration) -> String {
    const DAY: i64 = 24 * 60;
    let minutes = duration.as_mins();
    if (minutes > 0 && minutes % DAY == 0) || minutes >= 2 * DAY {
        format!("{}d", minutes / DAY)
    } else if (minutes > 0 && minutes % 60 == 0) || minutes >= 120 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(ignore_unfixed: bool) -> Gate {
        Gate {
            fail_on: vec!["CRITICAL".to_owned(), "HIGH".to_owned()],
            ignore_unfixed,
            ignores: Vec::new(),
            vex: Vec::new(),
            today: jiff::civil::date(2026, 11, 30),
            max_age: None,
            now: jiff::Timestamp::now(),
        }
    }

    /// Each scanner decides "has a fix" by its own field, not by whether a version is named, and
    /// Grype's NEGLIGIBLE and everyone's UNKNOWN are counted apart from LOW.
    #[test]
    fn fixes_and_severities_follow_each_scanner_s_own_rules() {
        let trivy = serde_json::json!({
            "SchemaVersion": 2,
            "Results": [{"Vulnerabilities": [
                {"VulnerabilityID": "CVE-1", "PkgName": "a", "InstalledVersion": "1", "FixedVersion": "2", "Status": "fixed", "Severity": "HIGH"},
                {"VulnerabilityID": "CVE-2", "PkgName": "b", "InstalledVersion": "1", "FixedVersion": "2", "Status": "will_not_fix", "Severity": "HIGH"},
                {"VulnerabilityID": "CVE-3", "PkgName": "c", "InstalledVersion": "1", "FixedVersion": "", "Status": "affected", "Severity": "UNKNOWN"},
                {"VulnerabilityID": "CVE-4", "PkgName": "d", "InstalledVersion": "1", "FixedVersion": "2", "Severity": "CRITICAL"}
            ]}]
        });
        let report = parse_report("trivy.json", &trivy).expect("trivy");
        let fixed: Vec<(&str, bool)> = report
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.fixed))
            .collect();
        assert_eq!(
            fixed,
            [
                ("CVE-1", true),
                ("CVE-2", false),
                ("CVE-3", false),
                ("CVE-4", true)
            ],
            "Status decides; an old report without Status falls back to FixedVersion"
        );
        let verdict = gate(true).judge(&report, "sha256:00");
        assert_eq!(
            verdict
                .blocking
                .iter()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>(),
            ["CVE-1", "CVE-4"],
            "will_not_fix with a version is still unfixed: ignore-unfixed sets it aside"
        );
        assert_eq!(verdict.counts["UNKNOWN"], 0, "set aside as unfixed");
        assert_eq!(gate(false).judge(&report, "sha256:00").counts["UNKNOWN"], 1);

        let grype = serde_json::json!({"matches": [
            {"vulnerability": {"id": "CVE-5", "severity": "Negligible", "fix": {"versions": [], "state": "not-fixed"}}, "artifact": {"name": "e", "version": "1"}},
            {"vulnerability": {"id": "CVE-6", "severity": "High", "fix": {"versions": ["2"], "state": "wont-fix"}}, "artifact": {"name": "f", "version": "1"}},
            {"vulnerability": {"id": "CVE-7", "severity": "High", "fix": {"versions": ["2"], "state": "fixed"}}, "artifact": {"name": "g", "version": "1"}},
            {"vulnerability": {"id": "CVE-8", "severity": "Whatever", "fix": {"versions": [], "state": "unknown"}}, "artifact": {"name": "h", "version": "1"}}
        ]});
        let report = parse_report("grype.json", &grype).expect("grype");
        let verdict = gate(false).judge(&report, "sha256:00");
        assert_eq!(verdict.counts["NEGLIGIBLE"], 1);
        assert_eq!(verdict.counts["LOW"], 0, "NEGLIGIBLE is not LOW");
        assert_eq!(verdict.counts["UNKNOWN"], 1);
        let unfixed = gate(true).judge(&report, "sha256:00");
        assert_eq!(
            unfixed
                .blocking
                .iter()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>(),
            ["CVE-7"],
            "wont-fix with a version is unfixed by Grype's rule"
        );
    }
}
