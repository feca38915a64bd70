//! The examples under `examples/`, checked against the binary: every `gantry <tool> --flag` a
//! pipeline's scripts run must be a tool and a flag that `gantry <tool> --help` names, and each
//! example's policy must load.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Every `script:` value in the document, in order.
fn scripts(yaml: &Yaml, out: &mut Vec<String>) {
    match yaml {
        Yaml::Hash(map) => {
            for (key, value) in map {
                match (key.as_str(), value.as_str()) {
                    (Some("script"), Some(text)) => out.push(text.to_owned()),
                    _ => scripts(value, out),
                }
            }
        }
        Yaml::Array(items) => items.iter().for_each(|item| scripts(item, out)),
        _ => {}
    }
}

/// `(tool, flags)` of each `gantry <tool> …` command line (continuation lines joined).
fn invocations(script: &str) -> Vec<(String, Vec<String>)> {
    let joined = script.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "gantry") else {
            continue;
        };
        let Some(tool) = words.get(at + 1) else {
            continue;
        };
        if tool.starts_with('(') || tool.starts_with('{') {
            continue; // the shell function's definition
        }
        let flags = words[at + 2..]
            .iter()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.split('=').next().unwrap_or(w).to_owned())
            .collect();
        found.push(((*tool).to_owned(), flags));
    }
    found
}

/// The flags `gantry <tool> --help` names; `None` when it is no tool.
fn help_flags(tool: &str) -> Option<BTreeSet<String>> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([tool, "--help"])
        .output()
        .expect("gantry");
    output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout)
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| w.starts_with("--"))
            .map(str::to_owned)
            .collect()
    })
}

#[test]
fn seed_003s_azure_pipeline_runs_only_what_gantry_has() {
    let dir = examples().join("003-flexicx");
    let text = std::fs::read_to_string(dir.join("azure-pipelines.yml")).expect("the pipeline");
    let docs = YamlLoader::load_from_str(&text).expect("the pipeline is YAML");
    let mut all = Vec::new();
    scripts(&docs[0], &mut all);
    let calls: Vec<(String, Vec<String>)> = all.iter().flat_map(|s| invocations(s)).collect();
    let tools: BTreeSet<&str> = calls.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tools,
        [
            "promote-digest",
            "sbom-attach",
            "sign-image",
            "verify-image"
        ]
        .into(),
        "{calls:?}"
    );
    for (tool, flags) in &calls {
        let known = help_flags(tool).unwrap_or_else(|| panic!("gantry has no tool {tool}"));
        for flag in flags {
            assert!(known.contains(flag), "gantry {tool} has no {flag}");
        }
    }
    // The same digest goes dev -> staging -> prod, each step a deployment job of an environment
    // (where Azure DevOps holds its approvals).
    let promotions: Vec<String> = calls
        .iter()
        .filter(|(t, _)| t == "promote-digest")
        .map(|(_, f)| f.join(" "))
        .collect();
    assert_eq!(promotions.len(), 2);
    for environment in ["environment: staging", "environment: prod"] {
        assert!(text.contains(environment), "{environment}");
    }
    assert_eq!(
        text.matches("stageDependencies.Build.BuildSignScan.outputs['image.digest']")
            .count(),
        3,
        "every later stage takes the build's digest"
    );
    // Secrets reach gantry through its environment, never its command line.
    assert!(
        !text.contains("--key-password"),
        "a password on a command line"
    );
    let policy = gantry_policy_load(&dir.join(".gantry/gantry.yml"));
    for (from, to) in [("dev", "staging"), ("staging", "prod")] {
        let promotion = policy.promotion(from, to).expect("a path");
        assert!(promotion.require_signature.is_some(), "{from} -> {to}");
    }
}

fn gantry_policy_load(path: &Path) -> promote_digest::policy::Policy {
    promote_digest::policy::Policy::load(path, true).expect("the example's policy loads")
}

/// The input (or output) names an action's `action.yml` declares under `section`.
fn declared(action: &Yaml, section: &str) -> BTreeSet<String> {
    action[section]
        .as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks one workflow's steps that use gantry's actions: pinned by full SHA, every `with:` key an
/// input the action declares, every `steps.<id>.outputs.<name>` an output it sets. Returns the
/// tools used.
fn check_workflow(path: &Path) -> BTreeSet<String> {
    let actions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../actions");
    let name = path.display();
    let text = std::fs::read_to_string(path).expect("the workflow");
    let workflow = &YamlLoader::load_from_str(&text).expect("YAML")[0];
    let mut used = BTreeSet::new();
    for (id, job) in workflow["jobs"].as_hash().expect("jobs") {
        if let Some(uses) = job["uses"].as_str() {
            let id = id.as_str().expect("a job id");
            used.extend(check_call(&name.to_string(), &text, id, uses, job));
            continue;
        }
        for step in job["steps"].as_vec().expect("steps") {
            if let Some(pin) = step["uses"]
                .as_str()
                .and_then(|u| u.strip_prefix("gantry-dev/gantry@"))
            {
                assert_eq!(
                    pin.split_whitespace().next().map(str::len),
                    Some(40),
                    "{name}: pinned by full SHA"
                );
                used.extend(check_root_action(&name.to_string(), step));
                continue;
            }
            let Some(tool) = step["uses"]
                .as_str()
                .and_then(|u| u.strip_prefix("gantry-dev/gantry/actions/"))
                .and_then(|u| u.split_once('@'))
                .map(|(tool, pin)| {
                    assert_eq!(pin.len(), 40, "{name}: {tool} pinned by full SHA");
                    tool.to_owned()
                })
            else {
                continue;
            };
            let action_text = std::fs::read_to_string(actions.join(&tool).join("action.yml"))
                .unwrap_or_else(|_| panic!("{name}: no action {tool}"));
            let action = &YamlLoader::load_from_str(&action_text).expect("YAML")[0];
            let inputs = declared(action, "inputs");
            for (key, _) in step["with"].as_hash().into_iter().flatten() {
                let key = key.as_str().expect("a name");
                assert!(inputs.contains(key), "{name}: {tool} has no input {key}");
            }
            if let Some(id) = step["id"].as_str() {
                let outputs = declared(action, "outputs");
                let prefix = format!("steps.{id}.outputs.");
                for reference in text.split(&prefix).skip(1) {
                    let output: String = reference
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    assert!(
                        outputs.contains(&output),
                        "{name}: {tool} has no output {output}"
                    );
                }
            }
            used.insert(tool);
        }
    }
    used
}

/// Checks a job that calls one of gantry's reusable workflows: pinned by full SHA, every `with:`
/// and `secrets:` key one it declares, every required one given, every `needs.<job>.outputs.<name>`
/// one it declares. Returns the reusable workflow (`workflow:<file>`) and the tools it runs.
fn check_call(name: &str, text: &str, id: &str, target: &str, job: &Yaml) -> BTreeSet<String> {
    let (file, pin) = target
        .strip_prefix("gantry-dev/gantry/.github/workflows/")
        .and_then(|u| u.split_once('@'))
        .unwrap_or_else(|| panic!("{name}: {target} is not one of gantry's reusable workflows"));
    assert_eq!(pin.len(), 40, "{name}: {file} pinned by full SHA");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.github/workflows")
        .join(file);
    let called_text =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{name}: no workflow {file}"));
    let called = &YamlLoader::load_from_str(&called_text).expect("YAML")[0];
    let call = &called["on"]["workflow_call"];
    for section in ["inputs", "secrets"] {
        let given: BTreeSet<String> = job[if section == "inputs" {
            "with"
        } else {
            "secrets"
        }]
        .as_hash()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.as_str().map(str::to_owned))
        .collect();
        let declared = declared(call, section);
        for key in &given {
            assert!(
                declared.contains(key),
                "{name}: {file} has no {section} {key}"
            );
        }
        for (key, spec) in call[section].as_hash().into_iter().flatten() {
            let key = key.as_str().expect("a name");
            if spec["required"].as_bool() == Some(true) {
                assert!(
                    given.contains(key),
                    "{name}: {file} requires {section} {key}"
                );
            }
        }
    }
    let outputs = declared(call, "outputs");
    for reference in text.split(&format!("needs.{id}.outputs.")).skip(1) {
        let output: String = reference
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            outputs.contains(&output),
            "{name}: {file} has no output {output}"
        );
    }
    let mut used: BTreeSet<String> = [format!("workflow:{file}")].into();
    for line in called_text.lines() {
        if let Some(args) = line.trim().strip_prefix("args: ") {
            used.extend(args.split_whitespace().next().map(str::to_owned));
        }
        if let Some(rest) = line.split("\"$GANTRY\" ").nth(1) {
            used.extend(rest.split_whitespace().next().map(str::to_owned));
        }
    }
    used
}

/// Checks a step that uses gantry's root action: every `with:` key an input it declares, `tool`
/// one it runs. Returns the tools that run.
fn check_root_action(name: &str, step: &Yaml) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../action.yml");
    let text = std::fs::read_to_string(path).expect("the root action");
    let action = &YamlLoader::load_from_str(&text).expect("YAML")[0];
    let inputs = declared(action, "inputs");
    for (key, _) in step["with"].as_hash().into_iter().flatten() {
        let key = key.as_str().expect("a name");
        assert!(
            inputs.contains(key),
            "{name}: the root action has no input {key}"
        );
    }
    let tool = step["with"]["tool"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: the root action needs tool"));
    if tool == "build-sign-promote" {
        [
            "sign-image",
            "sbom-attach",
            "verify-image",
            "promote-digest",
        ]
        .map(str::to_owned)
        .into()
    } else {
        assert!(
            text.contains(&format!("inputs.tool == '{tool}'")),
            "{name}: the root action runs no {tool}"
        );
        [tool.to_owned()].into()
    }
}

/// Every example's GitHub workflows and policies.
#[test]
fn every_example_workflow_and_policy_is_one_gantry_takes() {
    let mut workflows = 0;
    let mut policies = 0;
    // Each example's directory, and each repository's in an example of several (seed 000).
    let mut dirs = Vec::new();
    for example in std::fs::read_dir(examples()).expect("examples/") {
        let dir = example.expect("an entry").path();
        for inner in std::fs::read_dir(&dir).into_iter().flatten() {
            let inner = inner.expect("an entry").path();
            if inner.is_dir() && inner.join(".github").is_dir() {
                dirs.push(inner);
            }
        }
        dirs.push(dir);
    }
    for dir in dirs {
        for file in std::fs::read_dir(dir.join(".github/workflows"))
            .into_iter()
            .flatten()
        {
            check_workflow(&file.expect("an entry").path());
            workflows += 1;
        }
        let mut candidates = vec![
            dir.join(".github/gantry.yml"),
            dir.join(".gantry/gantry.yml"),
        ];
        for file in std::fs::read_dir(dir.join(".github/gantry"))
            .into_iter()
            .flatten()
        {
            candidates.push(file.expect("an entry").path());
        }
        for policy in candidates.into_iter().filter(|p| p.is_file()) {
            gantry_policy_load(&policy);
            policies += 1;
        }
    }
    assert!(
        workflows >= 5 && policies >= 4,
        "{workflows} workflows, {policies} policies"
    );
}

#[test]
fn seed_002s_workflows_call_gantrys_reusable_workflows_with_what_they_declare() {
    let dir = examples().join("002-immoflowme");
    let mut used = BTreeSet::new();
    for name in ["build-and-sign.yml", "promote.yml", "canary-deploy.yml"] {
        used.extend(check_workflow(&dir.join(".github/workflows").join(name)));
    }
    assert_eq!(
        used,
        [
            "canary-watch",
            "dispatch-integration",
            "promote-digest",
            "sbom-attach",
            "sign-image",
            "verify-image",
            "workflow:build-sign.yml",
            "workflow:canary.yml",
            "workflow:promote.yml",
        ]
        .map(str::to_owned)
        .into(),
    );
    // The paths the workflows take are the policy's, seed 002's table, each requiring the
    // signature of gantry's build-sign workflow run in this repository; the gates run on the way
    // to staging, production takes only a digest whose canary passed.
    let policy = gantry_policy_load(&dir.join(".github/gantry.yml"));
    for (from, to) in [
        ("build", "dev"),
        ("dev", "staging"),
        ("staging", "canary"),
        ("canary", "production"),
    ] {
        let promotion = policy
            .promotion(from, to)
            .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        let signature = promotion.require_signature.as_ref().expect("a signature");
        assert_eq!(signature.repository.as_deref(), Some("immoflowme/portal"));
    }
    let gates: Vec<&str> = policy
        .promotion("dev", "staging")
        .expect("a path")
        .gates
        .iter()
        .map(|g| g.run.as_str())
        .collect();
    assert_eq!(
        gates,
        ["./scripts/migrate --dry-run", "./scripts/smoke-test"]
    );
    assert!(
        policy
            .promotion("canary", "production")
            .expect("a path")
            .require_attestations
            .iter()
            .any(|a| a.contains("canary")),
        "production requires a healthy canary"
    );
    assert!(
        policy.promotion("dev", "production").is_err(),
        "no skipping"
    );
}

#[test]
fn seed_001_goes_to_staging_by_commit_and_to_production_by_pull_request() {
    use promote_digest::policy::{ArgoWait, GitOpsMode};
    let dir = examples().join("001-aiaas");
    let used = check_workflow(&dir.join(".github/workflows/service-cd.yml"));
    assert!(
        used.contains("promote-digest") && used.contains("sign-image"),
        "{used:?}"
    );
    let policy = gantry_policy_load(&dir.join(".github/gantry/api-router-service.yml"));
    let gitops = |env: &str| {
        policy
            .environment(env)
            .expect("an environment")
            .gitops
            .clone()
            .expect("gitops")
    };
    let (staging, production) = (gitops("staging"), gitops("production"));
    assert_eq!(
        (staging.mode, production.mode),
        (GitOpsMode::Commit, GitOpsMode::PullRequest)
    );
    assert_eq!(
        staging.argocd.map(|a| a.wait),
        Some(ArgoWait::SyncedHealthy)
    );
    assert!(
        production.argocd.is_some_and(|a| a.sync),
        "production syncs by hand"
    );
}

#[test]
fn seed_000s_service_waits_for_the_aspire_verdict_and_the_aspire_run_reports_it() {
    let dir = examples().join("000-aspire");
    let service = check_workflow(&dir.join("service-repo/.github/workflows/service-ci.yml"));
    assert!(
        service.contains("workflow:build-sign.yml")
            && service.contains("dispatch-integration")
            && service.contains("workflow:promote.yml"),
        "{service:?}"
    );
    let ci = std::fs::read_to_string(dir.join("service-repo/.github/workflows/service-ci.yml"))
        .expect("the workflow");
    assert!(
        ci.contains("if: needs.build.outputs.integration_conclusion == 'success'"),
        "prod only on a passing verdict"
    );
    let aspire = check_workflow(&dir.join("aspire-repo/.github/workflows/integration.yml"));
    assert!(
        aspire.contains("workflow:integration.yml")
            && aspire.contains("dispatch-integration")
            && aspire.contains("verify-image"),
        "{aspire:?}"
    );
    let text = std::fs::read_to_string(dir.join("aspire-repo/.github/workflows/integration.yml"))
        .expect("the workflow");
    // The receiving side of dispatch-integration's contract: named by the correlation id, one
    // queue per service; the reusable workflow reports always.
    for part in [
        "run-name: integration ${{ inputs.source_repository }} ${{ inputs.correlation_id }}",
        "group: integration-${{ inputs.source_repository }}",
        "cancel-in-progress: false",
    ] {
        assert!(text.contains(part), "{part}");
    }
    let reusable = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.github/workflows/integration.yml"),
    )
    .expect("the reusable workflow");
    for part in [
        "if: always()",
        "INPUT_COMMAND: report",
        "name: gantry-verdict",
    ] {
        assert!(reusable.contains(part), "{part}");
    }
    let release = check_workflow(&dir.join("service-repo/.github/workflows/sprint-release.yml"));
    assert!(
        release.contains("verify-image"),
        "a release checks the test verdict"
    );
}

/// The README's copy-paste snippets: each reusable workflow call gives only inputs and secrets
/// the workflow declares, and every required one; the root action's only inputs it declares;
/// the shell command only flags `gantry <tool> --help` names.
#[test]
fn the_readmes_snippets_use_only_what_they_call_declares() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let mut calls = 0;
    for block in readme.split("```yaml\n").skip(1) {
        let block = block.split("```").next().expect("a block");
        let doc = &YamlLoader::load_from_str(block).expect("the snippet is YAML")[0];
        for (_, job) in doc["jobs"].as_hash().into_iter().flatten() {
            let Some(uses) = job["uses"].as_str() else {
                continue;
            };
            let pinned = uses.replace("<sha>", &"0".repeat(40));
            check_call("README", block, "none", &pinned, job);
            calls += 1;
        }
        if let Some(steps) = doc.as_vec() {
            for step in steps {
                if step["uses"].as_str() == Some("gantry-dev/gantry@<sha>") {
                    check_root_action("README", step);
                    calls += 1;
                }
            }
        }
    }
    assert_eq!(calls, 5, "four reusable workflows and the root action");
    let command = readme
        .split("```sh\ngantry verify-image")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the verify-image command");
    let known = help_flags("verify-image").expect("a tool");
    for flag in command.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(known.contains(flag), "gantry verify-image has no {flag}");
    }
}

/// Every `gantry-dev/gantry…@<sha>` an example uses names a commit of this repository's history
/// that holds what it points at (the reusable workflow, the root action or the tool's action).
#[test]
fn every_pin_in_the_examples_is_a_commit_that_holds_what_it_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shallow = std::process::Command::new("git")
        .current_dir(&root)
        .args(["rev-parse", "--is-shallow-repository"])
        .output()
        .expect("git");
    assert!(
        shallow.status.success(),
        "not a git checkout: {}",
        String::from_utf8_lossy(&shallow.stderr)
    );
    if String::from_utf8_lossy(&shallow.stdout).trim() == "true" {
        gantry_testkit::shout(
            "a shallow clone: the examples' pins are checked against full history only",
        );
    }
    let full_history = String::from_utf8_lossy(&shallow.stdout).trim() == "false";
    let mut pins = 0;
    let mut files = vec![examples()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("a folder")
                    .map(|e| e.expect("an entry").path()),
            );
            continue;
        }
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a file");
        for line in text.lines() {
            let Some(uses) = line
                .trim()
                .trim_start_matches("- ")
                .strip_prefix("uses: gantry-dev/gantry")
            else {
                continue;
            };
            let (target, pin) = uses.split_once('@').expect("pinned");
            let pin = pin.split_whitespace().next().expect("a SHA");
            let file = match target.trim_start_matches('/') {
                "" => "action.yml".to_owned(),
                t if t.starts_with(".github/workflows/") => t.to_owned(),
                t => format!("{t}/action.yml"),
            };
            assert!(
                pin.len() == 40 && pin.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: {pin} is not a full commit SHA",
                path.display()
            );
            pins += 1;
            if !full_history {
                continue;
            }
            let shown = std::process::Command::new("git")
                .current_dir(&root)
                .args(["show", &format!("{pin}:{file}")])
                .output()
                .expect("git");
            assert!(
                shown.status.success(),
                "{}: {pin} holds no {file}: {}",
                path.display(),
                String::from_utf8_lossy(&shown.stderr)
            );
        }
    }
    assert!(pins >= 11, "{pins} pins");
}
