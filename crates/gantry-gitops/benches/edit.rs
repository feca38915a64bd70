//! What a GitOps promotion costs: the edit of a 100 KB and a 1 MiB Helm values file (gantry's
//! splice, verified by re-parsing) against ruamel.yaml's round trip (load, set, dump) in the same
//! run, with the bytes each changes outside the target; and the GitHub requests of one direct
//! commit (the stand-in behind prism). Writes `<target>/criterion/gitops-report.json` for
//! `cargo xtask bench gitops`.

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use criterion::Criterion;
use gantry_gitops::Target;
use serde_json::json;

const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const NEWER: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

/// A Helm-style values file of about `bytes`: commented sections of settings, the image last.
fn values(bytes: usize) -> String {
    let mut text =
        String::from("# Default values for billing.\n# This is a YAML-formatted file.\n\n");
    let mut n = 0;
    while text.len() < bytes {
        let _ = write!(
            text,
            "## Section {n}: settings of component {n}\ncomponent{n}:\n  enabled: true   # turn it off to skip it\n  replicas: {}\n  resources:\n    limits: {{cpu: 500m, memory: 512Mi}}\n    requests:\n      cpu: \"100m\"\n      memory: '128Mi'\n  env:\n    - name: LOG_LEVEL\n      value: info\n    - name: FEATURE_{n}\n      value: \"on\"\n  annotations:\n    prometheus.io/scrape: \"true\"\n\n",
            n % 5 + 1
        );
        n += 1;
    }
    let _ = write!(
        text,
        "image:\n  repository: ghcr.io/acme/billing\n  digest: \"{OLD}\"  # set by gantry\n  pullPolicy: IfNotPresent\n"
    );
    text
}

/// Bytes that differ outside the target line (a line-by-line count, the target excluded).
fn changed_lines(before: &str, after: &str) -> usize {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let differing = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y && !x.contains(OLD))
        .count();
    differing + a.len().abs_diff(b.len())
}

/// ruamel.yaml's round trip of `text`, `runs` times: (median seconds, lines changed outside the
/// target).
fn ruamel(text: &str, runs: usize) -> (f64, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("values.yaml");
    std::fs::write(&input, text).expect("write");
    let script = format!(
        r#"
import io, sys, time, json, statistics
from ruamel.yaml import YAML
text = open(sys.argv[1]).read()
times = []
for _ in range({runs}):
    start = time.perf_counter()
    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(text)
    data["image"]["digest"] = "{NEW}"
    out = io.StringIO()
    yaml.dump(data, out)
    times.append(time.perf_counter() - start)
open(sys.argv[2], "w").write(out.getvalue())
print(json.dumps(statistics.median(times)))
"#
    );
    let output_file = dir.path().join("out.yaml");
    let output = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .arg(&input)
        .arg(&output_file)
        .output()
        .expect("python3 with ruamel.yaml (cargo xtask setup)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let median: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("median");
    let after = std::fs::read_to_string(&output_file).expect("ruamel output");
    (median, changed_lines(text, &after))
}

/// The requests of one direct commit through the API, and of a pull request opened, then
/// superseded by a newer digest: `(commit, opened, updated)`.
fn api_requests() -> (u64, u64, u64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let fake = gantry_testkit::GitHubFake::start()
            .expect("fake GitHub")
            .expect("prism is installed");
        fake.commit_files(
            "acme/deploy",
            "main",
            &[
                ("values.yaml", values(1024).as_bytes()),
                ("production.yaml", values(1024).as_bytes()),
            ],
            "init",
        );
        let mut options =
            gantry_github::Options::new(gantry_secret::Secret::new(gantry_testkit::github::TOKEN));
        options.api_url = Some(fake.url());
        let github = gantry_github::GitHub::new(options).expect("client");
        let repository: gantry_github::Repository = "acme/deploy".parse().expect("repository");
        let targets = [Target::path("image.digest", false).expect("path")];
        let committer = gantry_github::Person {
            name: "gantry".into(),
            email: "gantry@example.com".into(),
        };
        let message = |_: Option<&str>| "promote".to_owned();
        let write = |file, digest| gantry_gitops::github::Write {
            repository: &repository,
            branch: "main",
            file,
            targets: &targets,
            digest,
            expected: None,
            message: &message,
            author: None,
            committer: &committer,
        };
        let production = vec![("production.yaml".to_owned(), targets.to_vec())];
        let write_files = |digest| gantry_gitops::github::WriteFiles {
            repository: &repository,
            branch: "main",
            files: &production,
            digest,
            expected: None,
            message: &message,
            author: None,
            committer: &committer,
        };
        let before = github.counted_requests();
        let landed = gantry_gitops::github::write(&github, &write("values.yaml", NEW))
            .await
            .expect("write");
        assert!(matches!(
            landed,
            gantry_gitops::github::Landed::Committed { .. }
        ));
        let commit = github.counted_requests() - before;
        let body = |_: &[gantry_gitops::Change], _: Option<&str>| "verified".to_owned();
        let status = gantry_github::NewCommitStatus {
            state: gantry_github::CommitState::Success,
            target_url: None,
            description: "verified".to_owned(),
            context: "gantry/verified-digest".to_owned(),
        };
        let people = ["lead".to_owned()];
        let labels = ["promotion".to_owned()];
        let mut counts = Vec::new();
        for digest in [NEW, NEWER] {
            let before = github.counted_requests();
            let proposed = gantry_gitops::pull::propose(
                &github,
                &gantry_gitops::pull::Proposal {
                    write: write_files(digest),
                    head: "gantry/production/billing",
                    title: "promote",
                    body: &body,
                    reviewers: &people,
                    team_reviewers: &[],
                    labels: &labels,
                    status: &status,
                    auto_merge: None,
                },
            )
            .await
            .expect("proposal");
            assert!(matches!(
                proposed,
                gantry_gitops::pull::Proposed::Proposed { .. }
            ));
            counts.push(github.counted_requests() - before);
        }
        (commit, counts[0], counts[1])
    })
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args().sample_size(20);
    let mut rows = Vec::new();
    for (name, bytes) in [("100 KB", 100 * 1024), ("1 MiB", 1024 * 1024)] {
        let text = values(bytes);
        let targets = [Target::path("image.digest", false).expect("path")];
        let edited = gantry_gitops::edit("values.yaml", &text, &targets, NEW).expect("edit");
        let gantry_changed = changed_lines(&text, &edited.text);
        criterion.bench_function(&format!("edit {name}"), |b| {
            b.iter(|| gantry_gitops::edit("values.yaml", &text, &targets, NEW).expect("edit"));
        });
        let started = Instant::now();
        let runs = 5;
        for _ in 0..runs {
            let _ = gantry_gitops::edit("values.yaml", &text, &targets, NEW).expect("edit");
        }
        #[expect(clippy::cast_precision_loss, reason = "a handful of runs")]
        let gantry_seconds = started.elapsed().as_secs_f64() / runs as f64;
        let (peer_seconds, peer_changed) = ruamel(&text, runs);
        println!(
            "gitops: {name}: gantry {gantry_seconds:.4} s ({gantry_changed} lines changed outside the target), ruamel.yaml {peer_seconds:.4} s ({peer_changed})"
        );
        rows.push(json!({
            "size": name,
            "bytes": text.len(),
            "gantry_seconds": gantry_seconds,
            "gantry_changed_lines": gantry_changed,
            "ruamel_seconds": peer_seconds,
            "ruamel_changed_lines": peer_changed,
        }));
    }
    let (commit, opened, updated) = api_requests();
    let report = json!({
        "edits": rows,
        "api_requests_per_commit": commit,
        "api_requests_per_pull": {"opened": opened, "updated": updated},
        "cores": std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    });
    println!("{report:#}");
    let dir = gantry_testkit::criterion_dir();
    std::fs::create_dir_all(&dir).expect("criterion dir");
    std::fs::write(dir.join("gitops-report.json"), report.to_string()).expect("report");
}
