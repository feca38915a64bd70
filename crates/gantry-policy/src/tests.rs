use std::fmt::Write as _;

use super::*;

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse("gantry.yml", text)
}

fn error(text: &str) -> String {
    parse(text).expect_err("must be refused").to_string()
}

#[test]
fn without_a_file_the_seed_chain_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = Policy::load(&dir.path().join("gantry.yml"), false).expect("default");
    assert_eq!(policy, Policy::default_chain());
    assert!(policy.promotion("dev", "staging").is_ok());
    assert!(policy.promotion("canary", "production").is_ok());
    let skip = policy
        .promotion("dev", "production")
        .expect_err("no skipping");
    assert_eq!(
        skip.to_string(),
        "promotion dev -> production is not allowed by the default chain (dev -> staging -> canary -> production) (allowed from dev: staging)"
    );
    let back = policy
        .promotion("production", "canary")
        .expect_err("no going back");
    assert!(
        back.to_string()
            .ends_with("(allowed from production: none)"),
        "{back}"
    );
    let unknown = policy.promotion("dev", "qa").expect_err("unknown");
    assert_eq!(
        unknown.to_string(),
        "unknown environment \"qa\" (the policy has: dev, staging, canary, production)"
    );
    assert!(
        Policy::load(&dir.path().join("gantry.yml"), true).is_err(),
        "an explicit path must exist"
    );
}

#[test]
fn a_full_policy_with_gates_roles_and_another_registry() {
    let policy = parse(
        r#"
version: 1
environments:
  - name: dev
  - name: staging
  - name: production
    repository: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/billing
    tag: "prod-{digest12}"
promotions:
  - from: dev
    to: staging
    gates:
      - name: migration dry-run
        run: ./scripts/migrate --dry-run
        timeout: 120
  - from: staging
    to: production
    allowed:
      roles: [maintain]
      teams: [acme/tech-leads]
"#,
    )
    .expect("valid");
    let to_staging = policy.promotion("dev", "staging").expect("allowed");
    assert_eq!(
        to_staging.gates,
        [Gate {
            name: "migration dry-run".into(),
            run: "./scripts/migrate --dry-run".into(),
            timeout: Duration::from_mins(2),
            env: Vec::new(),
        }]
    );
    assert_eq!(to_staging.allowed, None);
    let to_prod = policy.promotion("staging", "production").expect("allowed");
    assert_eq!(
        to_prod.allowed,
        Some(Allowed {
            roles: vec![Role::Maintain],
            teams: vec!["acme/tech-leads".into()]
        })
    );
    assert!(
        policy.promotion("dev", "production").is_err(),
        "only listed paths"
    );

    let image: gantry_oci::Reference = "ghcr.io/acme/billing:build".parse().expect("image");
    let digest = gantry_oci::Digest::sha256(b"image");
    assert_eq!(
        policy
            .reference("staging", &image, &digest)
            .expect("staging")
            .to_string(),
        "ghcr.io/acme/billing:staging"
    );
    let prod = policy
        .reference("production", &image, &digest)
        .expect("production");
    assert_eq!(
        prod.registry(),
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        prod.tag(),
        Some(format!("prod-{}", &digest.hex()[..12]).as_str())
    );
}

#[test]
fn errors_name_the_line_and_column() {
    let cases = [
        (
            "version: 2\n",
            "gantry.yml:1:10: version must be 1, found \"2\"",
        ),
        (
            "version: 1\nenvironments:\n  - name: dev\n  - name: Dev\n",
            "gantry.yml:4:11: environment name \"Dev\"",
        ),
        (
            "version: 1\nenvironments:\n  - name: dev\n  - name: dev\n",
            "gantry.yml:4:11: environment \"dev\" is defined twice",
        ),
        (
            "version: 1\npromotions:\n  - from: dev\n    to: qa\n",
            "gantry.yml:4:9: unknown environment \"qa\" (known: dev, staging, canary, production)",
        ),
        (
            "version: 1\npromotions:\n  - from: dev\n    to: dev\n",
            "gantry.yml:4:9: a promotion from dev to itself does nothing",
        ),
        (
            "version: 1\npromotions:\n  - from: dev\n    to: staging\n    allowed:\n      roles: [owner]\n",
            "gantry.yml:6:15: unknown role \"owner\"",
        ),
        (
            "version: 1\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: x\n        run: y\n        timeout: soon\n",
            "gantry.yml:8:18: timeout must be a whole number of seconds",
        ),
        (
            "version: 1\nenvironments:\n  - name: dev\n  - name: prod\n    tag: \"{branch}\"\n",
            "gantry.yml:5:10: tag \"{branch}\" uses {branch}",
        ),
        (
            "version: 1\nenvironments:\n  - name: dev\n  - name: prod\n    tag: \"a b\"\n",
            "renders to \"a b\", which is not a valid tag",
        ),
        (
            "version: 1\nenvironments:\n  - name: dev\n  - name: prod\n    repository: Nope/x\n",
            "gantry.yml:5:17: repository \"Nope/x\"",
        ),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(
            message.contains(expected),
            "for {text:?}\n  expected: {expected}\n  found:    {message}"
        );
    }
}

#[test]
fn unknown_fields_and_broken_yaml_are_located() {
    let unknown = error("version: 1\npromotion:\n  - from: dev\n");
    assert!(
        unknown.starts_with("gantry.yml:2:1: Unknown field `promotion`"),
        "{unknown}"
    );
    assert!(unknown.contains("promotion"), "{unknown}");
    let broken = error("version: 1\nenvironments: [\n");
    assert!(broken.starts_with("gantry.yml:"), "{broken}");
    let single = error("version: 1\nenvironments:\n  - name: only\n");
    assert_eq!(
        single,
        "gantry.yml: a policy needs at least two environments to promote between"
    );
}

#[test]
fn deep_nesting_is_refused_before_a_tree_is_built() {
    let flow = format!(
        "version: \"1\"\nenvironments: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(error(&flow), "gantry.yml:2:1: nested deeper than 32 levels");
    let mut block = String::from("version: \"1\"\npromotions:\n");
    for level in 0..40 {
        let _ = writeln!(block, "{}- a:", "  ".repeat(level + 1));
    }
    assert!(
        error(&block).contains("nested deeper than 32 levels"),
        "{}",
        error(&block)
    );
    let one_line = format!("version: \"1\"\npromotions:\n  {}x\n", "- ".repeat(40));
    assert!(error(&one_line).contains("nested deeper than 32 levels"));
}

#[test]
fn a_gate_script_is_not_yaml_structure() {
    let text = "version: \"1\"\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: check\n        run: |\n          if [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ [[ -f x ]]; then\n            - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - echo\n          fi\n        env: [SMOKE_URL]\n";
    let policy = parse(text).expect("a script is text");
    let gate = &policy.promotion("dev", "staging").expect("path").gates[0];
    assert!(gate.run.contains("-f x"));
    assert_eq!(gate.env, ["SMOKE_URL"]);
}

#[test]
fn duplicate_keys_are_refused_where_they_stand() {
    let text = "version: \"1\"\npromotions:\n  - from: dev\n    to: staging\n    to: production\n";
    let message = error(text);
    assert!(message.starts_with("gantry.yml:5:5:"), "{message}");
    assert!(message.to_lowercase().contains("duplicate"), "{message}");
}

#[test]
fn size_and_list_lengths_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("gantry.yml");
    std::fs::write(&big, format!("version: \"1\"\n# {}\n", "x".repeat(2 << 20))).expect("write");
    let refused = Policy::load(&big, true).expect_err("too big").to_string();
    assert!(refused.contains("at most 1048576 are read"), "{refused}");

    let mut many = String::from("version: \"1\"\nenvironments:\n");
    for i in 0..200_000 {
        let _ = writeln!(many, "  - name: e{i}");
    }
    many.truncate(1 << 20);
    let cut = many.rfind('\n').unwrap_or(0);
    many.truncate(cut + 1);
    let message = error(&many);
    assert!(
        message.contains("a policy may hold at most 256"),
        "{message}"
    );

    let bad_env = "version: \"1\"\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: g\n        run: \"true\"\n        env: [\"NOT-A-NAME\"]\n";
    assert!(error(bad_env).contains("is not an environment variable name"));
}

#[test]
fn aliases_name_the_environment_in_its_repository() {
    let policy = parse(
        r"
version: 1
environments:
  - name: canary
  - name: production
    repository: registry.example/acme/billing
    aliases: [latest, stable]
",
    )
    .expect("valid");
    let image: gantry_oci::Reference = "ghcr.io/acme/billing".parse().expect("reference");
    let digest = gantry_oci::Digest::sha256(b"image");
    let aliases = policy
        .aliases("production", &image, &digest)
        .expect("aliases");
    let names: Vec<String> = aliases.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "registry.example/acme/billing:latest",
            "registry.example/acme/billing:stable"
        ]
    );
    assert!(
        policy
            .aliases("canary", &image, &digest)
            .expect("none")
            .is_empty()
    );
}

#[test]
fn an_alias_must_be_a_tag_of_one_environment_only() {
    let bad_tag = error(
        "version: 1\nenvironments:\n  - name: dev\n  - name: prod\n    aliases: [\"not a tag\"]\n",
    );
    assert_eq!(
        bad_tag,
        "gantry.yml:5:15: alias \"not a tag\" of prod is not a valid tag"
    );
    let twice = error(
        "version: 1\nenvironments:\n  - name: dev\n  - name: prod\n    aliases: [latest, latest]\n",
    );
    assert!(
        twice.starts_with("gantry.yml:5:23: alias \"latest\" of prod is listed twice"),
        "{twice}"
    );
    let other =
        error("version: 1\nenvironments:\n  - name: dev\n    aliases: [prod]\n  - name: prod\n");
    assert_eq!(
        other,
        "gantry.yml: tag \"prod\" of environment prod names another environment too: each tag may name one"
    );
}

#[test]
fn the_signatures_an_environment_requires_are_those_of_the_paths_into_it() {
    let policy = parse(
        r"
version: 1
promotions:
  - from: dev
    to: staging
  - from: staging
    to: canary
    require-signature:
      identity: https://github.com/acme/billing/.github/workflows/release.yml@refs/heads/main
  - from: canary
    to: production
",
    )
    .expect("valid");
    let into_canary = policy.signatures_into("canary");
    assert_eq!(into_canary.len(), 1);
    assert_eq!(
        (into_canary[0].0.from.as_str(), into_canary[0].0.to.as_str()),
        ("staging", "canary")
    );
    assert!(policy.signatures_into("staging").is_empty());
    assert!(policy.signatures_into("production").is_empty());
}

#[test]
fn gitops_environments_seed_001() {
    let policy = parse(
        r"
version: 1
environments:
  - name: dev
  - name: staging
    gitops:
      repository: acme/deploy
      targets:
        - file: apps/billing/staging/values.yaml
          path: image.digest
        - file: apps/billing/staging/kustomization.yaml
          kustomize-image: ghcr.io/acme/billing
      argocd: {server: https://argocd.example/, application: platform-staging-billing}
  - name: production
    tag: prod
    gitops:
      repository: acme/deploy-prod
      branch: release
      mode: pull-request
      pull-request:
        reviewers: [lead-lars]
        team-reviewers: [platform_leads]
        labels: [promotion, 'needs: approval']
        auto-merge: squash
      targets:
        - file: apps/billing/prod/values.yaml
          marker: billing
        - file: apps/billing/prod/values.yaml
          image: ghcr.io/acme/billing
      argocd: {server: https://argocd.example, application: platform-prod-billing, wait: synced, sync: true}
",
    )
    .expect("valid");
    let staging = policy.environment("staging").expect("staging");
    assert!(!staging.registry, "gitops instead of a tag");
    let gitops = staging.gitops.as_ref().expect("gitops");
    assert_eq!(
        gitops.repository,
        GitOpsRepository::GitHub("acme/deploy".into())
    );
    assert_eq!(
        (gitops.branch.as_str(), gitops.mode),
        ("main", GitOpsMode::Commit)
    );
    assert_eq!(gitops.files.len(), 2);
    assert_eq!(
        gitops.files[1].1,
        [gantry_gitops::Target::KustomizeImage {
            name: "ghcr.io/acme/billing".into()
        }]
    );
    assert_eq!(
        gitops.argocd,
        Some(ArgoCd {
            server: "https://argocd.example".into(),
            application: "platform-staging-billing".into(),
            wait: ArgoWait::SyncedHealthy,
            sync: false,
        })
    );
    let production = policy.environment("production").expect("production");
    assert!(production.registry, "a tag beside the gitops files");
    let gitops = production.gitops.as_ref().expect("gitops");
    assert_eq!(
        gitops.repository,
        GitOpsRepository::GitHub("acme/deploy-prod".into())
    );
    assert_eq!(
        (gitops.branch.as_str(), gitops.mode),
        ("release", GitOpsMode::PullRequest)
    );
    assert_eq!(
        gitops.pull_request,
        PullRequestPolicy {
            reviewers: vec!["lead-lars".into()],
            team_reviewers: vec!["platform_leads".into()],
            labels: vec!["promotion".into(), "needs: approval".into()],
            auto_merge: Some("SQUASH".into()),
        }
    );
    assert_eq!(
        staging.gitops.as_ref().map(|g| g.pull_request.clone()),
        Some(PullRequestPolicy::default())
    );
    assert_eq!(gitops.files.len(), 1, "two targets of one file");
    assert_eq!(gitops.files[0].1.len(), 2);
    let argocd = gitops.argocd.as_ref().expect("argocd");
    assert_eq!((argocd.wait, argocd.sync), (ArgoWait::Synced, true));
    assert!(policy.environment("dev").expect("dev").registry);
}

#[test]
fn gitops_mistakes_are_located() {
    let with = |gitops: &str| {
        error(&format!(
            "version: 1\nenvironments:\n  - name: dev\n  - name: prod\n    gitops:\n{gitops}"
        ))
    };
    assert_eq!(
        with("      repository: acme\n      targets:\n        - file: a.yaml\n          path: a\n"),
        "gantry.yml:6:19: gitops repository \"acme\" is neither owner/name (GitHub) nor a git URL"
    );
    assert_eq!(
        with(
            "      repository: acme/deploy\n      targets:\n        - file: a.yaml\n          path: a\n          marker: b\n"
        ),
        "gantry.yml:8:17: gitops target a.yaml: give exactly one of path, kustomize-image, image, marker"
    );
    assert_eq!(
        with(
            "      repository: acme/deploy\n      targets:\n        - file: ../a.yaml\n          path: a\n"
        ),
        "gantry.yml:8:17: gitops file \"../a.yaml\" must be a path inside the repository"
    );
    assert_eq!(
        with(
            "      repository: acme/deploy\n      mode: push\n      targets:\n        - file: a.yaml\n          path: a\n"
        ),
        "gantry.yml:7:13: gitops mode must be commit or pull-request, found \"push\""
    );
    assert_eq!(
        with(
            "      repository: acme/deploy\n      targets:\n        - file: a.yaml\n          path: a..b\n"
        ),
        "gantry.yml:9:17: path \"a..b\": an empty key"
    );
    assert_eq!(
        with(
            "      repository: https://gitlab.example/acme/deploy.git\n      mode: pull-request\n      targets:\n        - file: a.yaml\n          path: a\n"
        ),
        "gantry.yml:6:19: gitops mode pull-request opens a GitHub pull request: the repository must be owner/name on GitHub"
    );
    assert_eq!(
        with(
            "      repository: acme/deploy\n      pull-request: {labels: [x]}\n      targets:\n        - file: a.yaml\n          path: a\n"
        ),
        "gantry.yml:7:21: gitops pull-request settings need mode: pull-request"
    );
    assert_eq!(
        with(
            "      repository: acme/deploy\n      mode: pull-request\n      pull-request: {reviewers: [\"lead lars\"]}\n      targets:\n        - file: a.yaml\n          path: a\n"
        ),
        "gantry.yml:8:34: login \"lead lars\" is not a GitHub login"
    );
}

#[test]
fn the_promote_digest_readme_shows_a_valid_seed_001_policy() {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../actions/promote-digest/README.md"),
    )
    .expect("README");
    let section = &readme[readme
        .find("## GitOps environments")
        .expect("GitOps section")..];
    let block = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the policy block");
    let policy = parse(&format!("version: 1\n{block}")).expect("the README's policy is valid");
    let staging = policy.environment("staging").expect("staging");
    let production = policy.environment("production").expect("production");
    let (staging, production) = (
        staging.gitops.as_ref().expect("gitops"),
        production.gitops.as_ref().expect("gitops"),
    );
    assert_eq!(
        (staging.mode, production.mode),
        (GitOpsMode::Commit, GitOpsMode::PullRequest)
    );
    assert_eq!(staging.files.len(), 2);
    assert_eq!(
        staging.argocd.as_ref().map(|a| a.wait),
        Some(ArgoWait::SyncedHealthy)
    );
    assert!(production.argocd.as_ref().is_some_and(|a| a.sync));
    assert!(
        policy
            .promotion("staging", "production")
            .expect("path")
            .require_signature
            .is_some()
    );
}
