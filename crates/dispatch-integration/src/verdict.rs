//! `gantry-verdict.json`: what an integration run concluded about one digest. The reporter writes
//! it (and uploads it as artifact `gantry-verdict`); the caller reads it back and checks it.

use serde::{Deserialize, Serialize};

/// The file's name, and (without `.json`) the artifact's.
pub const VERDICT_FILE: &str = "gantry-verdict.json";
/// The artifact's name.
pub const VERDICT_ARTIFACT: &str = "gantry-verdict";
/// The most a verdict may be.
pub const VERDICT_LIMIT: u64 = 64 * 1024;
/// The schema identifier every verdict carries.
pub const VERDICT_SCHEMA: &str = "https://gantry.dev/schemas/verdict/v1";
/// The verdict's JSON Schema (`verdict.schema.json`, draft 2020-12), whose `$id` is
/// [`VERDICT_SCHEMA`]. [`Verdict::read`] enforces the same rules.
pub const VERDICT_JSON_SCHEMA: &str = include_str!("../verdict.schema.json");

/// Test counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tests {
    /// Passed.
    pub passed: u64,
    /// Failed (errors included).
    pub failed: u64,
    /// Skipped.
    pub skipped: u64,
}

/// A job's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    /// The job's name.
    pub name: String,
    /// Its conclusion.
    pub conclusion: String,
}

/// The verdict of one integration run attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// [`VERDICT_SCHEMA`].
    pub schema: String,
    /// `passed` or `failed`.
    pub verdict: String,
    /// The image tested.
    pub image: String,
    /// The digest tested.
    pub digest: String,
    /// The service repository.
    pub source_repository: String,
    /// Its commit.
    pub source_commit: String,
    /// The dispatch's correlation id.
    pub correlation_id: String,
    /// The integration run's id.
    pub run_id: u64,
    /// Its attempt.
    pub run_attempt: u32,
    /// Its page.
    pub run_url: String,
    /// The jobs that ran before the reporter, and how they ended.
    pub jobs: Vec<JobResult>,
    /// Test counts, when a results file was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Tests>,
}

impl Verdict {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.verdict == "passed"
    }

    /// Parses and checks a verdict read back: the schema, the size, the verdict word, and that
    /// it is about `digest` and `correlation_id`.
    pub fn read(bytes: &[u8], digest: &str, correlation_id: &str) -> Result<Self, String> {
        if bytes.len() as u64 > VERDICT_LIMIT {
            return Err(format!(
                "{VERDICT_FILE} is {} bytes, at most {VERDICT_LIMIT} are read",
                bytes.len()
            ));
        }
        let verdict: Self = serde_json::from_slice(bytes)
            .map_err(|e| format!("{VERDICT_FILE} does not follow {VERDICT_SCHEMA}: {e}"))?;
        if verdict.schema != VERDICT_SCHEMA {
            return Err(format!(
                "{VERDICT_FILE} has schema {:?}, expected {VERDICT_SCHEMA}",
                verdict.schema
            ));
        }
        if !matches!(verdict.verdict.as_str(), "passed" | "failed") {
            return Err(format!(
                "{VERDICT_FILE} says {:?}, expected passed or failed",
                verdict.verdict
            ));
        }
        if verdict.digest != digest {
            return Err(format!(
                "{VERDICT_FILE} is about {}, expected {digest}",
                verdict.digest
            ));
        }
        if verdict.correlation_id != correlation_id {
            return Err(format!(
                "{VERDICT_FILE} answers dispatch {}, expected {correlation_id}",
                verdict.correlation_id
            ));
        }
        Ok(verdict)
    }
}

/// Test counts from a `JUnit` XML file (`<testsuite tests= failures= errors= skipped=>`, summed
/// over suites; `<testsuites>` totals are not counted twice) or a TRX file (`<Counters …/>`).
pub fn parse_results(text: &str) -> Result<Tests, String> {
    let attribute = |tag: &str, name: &str| -> u64 {
        let pattern = format!(r#"\b{name}\s*=\s*"(\d+)""#);
        regex::Regex::new(&pattern)
            .ok()
            .and_then(|re| re.captures(tag))
            .and_then(|c| c[1].parse().ok())
            .unwrap_or(0)
    };
    let tags = |name: &str| -> Vec<String> {
        let pattern = format!(r"<(?:\w+:)?{name}\b[^>]*>");
        regex::Regex::new(&pattern)
            .map(|re| re.find_iter(text).map(|m| m.as_str().to_owned()).collect())
            .unwrap_or_default()
    };
    if let Some(counters) = tags("Counters").first() {
        let failed = attribute(counters, "failed")
            + attribute(counters, "error")
            + attribute(counters, "timeout")
            + attribute(counters, "aborted");
        let passed = attribute(counters, "passed");
        let total = attribute(counters, "total");
        return Ok(Tests {
            passed,
            failed,
            skipped: total.saturating_sub(passed + failed),
        });
    }
    let suites = tags("testsuite");
    if suites.is_empty() {
        return Err("neither a TRX file (<Counters>) nor JUnit XML (<testsuite>)".to_owned());
    }
    let mut tests = Tests::default();
    for suite in &suites {
        let total = attribute(suite, "tests");
        let failed = attribute(suite, "failures") + attribute(suite, "errors");
        let skipped = attribute(suite, "skipped") + attribute(suite, "disabled");
        tests.failed += failed;
        tests.skipped += skipped;
        tests.passed += total.saturating_sub(failed + skipped);
    }
    Ok(tests)
}

/// The most test names a list keeps (a test-result attestation stays small).
pub const NAMES_LIMIT: usize = 1000;

/// The names of the tests in a `JUnit` XML or TRX file: passed, failed (errors included),
/// skipped, each at most [`NAMES_LIMIT`] long.
pub fn test_names(text: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let pattern = format!(r#"\b{name}\s*=\s*"([^"]*)""#);
        regex::Regex::new(&pattern)
            .ok()
            .and_then(|re| re.captures(tag))
            .map(|c| c[1].to_owned())
    };
    let push = |list: &mut Vec<String>, name: String| {
        if list.len() < NAMES_LIMIT {
            list.push(name);
        }
    };
    if let Ok(trx) = regex::Regex::new(r"<(?:\w+:)?UnitTestResult\b[^>]*>") {
        for tag in trx.find_iter(text).map(|m| m.as_str()) {
            let name = attribute(tag, "testName").unwrap_or_default();
            match attribute(tag, "outcome").as_deref() {
                Some("Passed") => push(&mut passed, name),
                Some("NotExecuted" | "Inconclusive") => push(&mut skipped, name),
                _ => push(&mut failed, name),
            }
        }
    }
    if let Ok(junit) = regex::Regex::new(r"(?s)<testcase\b([^>]*?)(?:/>|>(.*?)</testcase>)") {
        for case in junit.captures_iter(text) {
            let tag = &case[1];
            let name = match (attribute(tag, "classname"), attribute(tag, "name")) {
                (Some(class), Some(name)) if !class.is_empty() => format!("{class}.{name}"),
                (_, Some(name)) => name,
                _ => String::new(),
            };
            let inner = case.get(2).map_or("", |m| m.as_str());
            if inner.contains("<failure") || inner.contains("<error") {
                push(&mut failed, name);
            } else if inner.contains("<skipped") {
                push(&mut skipped, name);
            } else {
                push(&mut passed, name);
            }
        }
    }
    (passed, failed, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_and_trx_counts() {
        let junit = r#"<?xml version="1.0"?>
<testsuites tests="5" failures="1">
  <testsuite name="a" tests="3" failures="1" errors="0" skipped="1"><testcase name="x"/></testsuite>
  <testsuite name="b" tests="2" failures="0" errors="0"/>
</testsuites>"#;
        assert_eq!(
            parse_results(junit),
            Ok(Tests {
                passed: 3,
                failed: 1,
                skipped: 1
            })
        );
        let trx = r#"<TestRun><ResultSummary outcome="Failed">
  <Counters total="10" executed="9" passed="7" failed="2" error="0" timeout="0" aborted="0" inconclusive="0" notExecuted="1"/>
</ResultSummary></TestRun>"#;
        assert_eq!(
            parse_results(trx),
            Ok(Tests {
                passed: 7,
                failed: 2,
                skipped: 1
            })
        );
        assert!(parse_results("<html/>").is_err());
    }

    #[test]
    fn test_names_from_junit_and_trx() {
        let junit = r#"<testsuite tests="3">
  <testcase classname="Orders" name="creates"/>
  <testcase classname="Orders" name="cancels"><failure message="x">boom</failure></testcase>
  <testcase name="later"><skipped/></testcase>
</testsuite>"#;
        assert_eq!(
            test_names(junit),
            (
                vec!["Orders.creates".to_owned()],
                vec!["Orders.cancels".to_owned()],
                vec!["later".to_owned()]
            )
        );
        let trx = r#"<Results><UnitTestResult testName="A" outcome="Passed"/><UnitTestResult testName="B" outcome="Failed"/></Results>"#;
        assert_eq!(
            test_names(trx),
            (vec!["A".to_owned()], vec!["B".to_owned()], vec![])
        );
    }

    #[test]
    fn the_json_schema_describes_exactly_the_fields_written() {
        let schema: serde_json::Value =
            serde_json::from_str(VERDICT_JSON_SCHEMA).expect("the schema is JSON");
        assert_eq!(schema["$id"], VERDICT_SCHEMA);
        let verdict = Verdict {
            schema: VERDICT_SCHEMA.into(),
            verdict: "passed".into(),
            image: "i".into(),
            digest: "sha256:aa".into(),
            source_repository: "a/b".into(),
            source_commit: "c".into(),
            correlation_id: "g".into(),
            run_id: 1,
            run_attempt: 1,
            run_url: String::new(),
            jobs: vec![],
            tests: Some(Tests::default()),
        };
        let written = serde_json::to_value(&verdict).expect("json");
        let mut fields: Vec<&String> = written.as_object().expect("object").keys().collect();
        let mut described: Vec<&String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .collect();
        fields.sort();
        described.sort();
        assert_eq!(fields, described);
    }

    #[test]
    fn a_verdict_read_back_is_checked() {
        let verdict = Verdict {
            schema: VERDICT_SCHEMA.into(),
            verdict: "passed".into(),
            image: "ghcr.io/acme/billing".into(),
            digest: "sha256:aa".into(),
            source_repository: "acme/billing".into(),
            source_commit: "abc".into(),
            correlation_id: "gantry-1".into(),
            run_id: 1,
            run_attempt: 1,
            run_url: "https://github.com/acme/integration/actions/runs/1".into(),
            jobs: vec![],
            tests: Some(Tests::default()),
        };
        let bytes = serde_json::to_vec(&verdict).expect("json");
        assert_eq!(
            Verdict::read(&bytes, "sha256:aa", "gantry-1").as_ref(),
            Ok(&verdict)
        );
        assert!(Verdict::read(&bytes, "sha256:bb", "gantry-1").is_err());
        assert!(Verdict::read(&bytes, "sha256:aa", "gantry-2").is_err());
        let mut extra: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        extra["surprise"] = serde_json::json!(1);
        assert!(Verdict::read(extra.to_string().as_bytes(), "sha256:aa", "gantry-1").is_err());
        let mut maybe = verdict.clone();
        maybe.verdict = "maybe".into();
        let maybe = serde_json::to_vec(&maybe).expect("json");
        assert!(Verdict::read(&maybe, "sha256:aa", "gantry-1").is_err());
        assert!(Verdict::read(&vec![b' '; 70_000], "sha256:aa", "gantry-1").is_err());
    }
}
