//! GitOps environments: promote-digest writes the digest into the GitOps repository — through
//! GitHub's API (the stand-in behind prism) or with git (a real git server) — by one commit,
//! reads the previous digest from the file, refuses when someone else wrote it during the gates.

use gantry_testkit::argocd::{ArgoFake, Ending, TOKEN as ARGO_TOKEN};
use gantry_testkit::git::{GitServer, PASSWORD, USER};
use gantry_testkit::github::{GitHubFake, TOKEN};

use crate::{push, says, setup, text};

fn values(digest: &str) -> String {
    format!(
        "# staging\nimage:\n  repository: ghcr.io/acme/billing\n  digest: \"{digest}\" # gantry\n"
    )
}

/// The arguments that point promote-digest at the GitHub stand-in with `policy`, recording no
/// deployment.
fn through(fake: &GitHubFake, policy: &str) -> Vec<String> {
    [
        "--policy",
        policy,
        "--github-token",
        TOKEN,
        "--github-api-url",
        &fake.url(),
        "--deployment",
        "false",
    ]
    .map(str::to_owned)
    .to_vec()
}

const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_environment_gets_one_commit_through_the_github_api() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let file = "apps/billing/staging/values.yaml";
    fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(OLD).as_bytes())],
        "init",
    );
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: staging\n    gitops:\n      repository: acme/deploy\n      targets:\n        - file: {file}\n          path: image.digest\n"
    ));
    let digest = push(&env, "dev", b"build once").await;
    let github = [
        "--policy",
        &policy,
        "--github-token",
        TOKEN,
        "--github-api-url",
        &fake.url(),
        "--deployment",
        "false",
        "--actor",
        "lead-lars",
    ];
    let (output, json) = env.promote(&digest, "dev", "staging", &github);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        fake.prism_log()
    );
    assert_eq!(json["outputs"]["promoted"], "true");
    assert_eq!(
        json["outputs"]["previous-digest"], OLD,
        "read from the file"
    );
    let log = fake.log("acme/deploy", "main");
    assert_eq!(log.len(), 2);
    assert_eq!(json["outputs"]["gitops-commit"], log[0].sha.as_str());
    assert_eq!(
        json["outputs"]["target-ref"],
        format!("acme/deploy@main:{file}")
    );
    assert_eq!(log[0].author.0, "lead-lars");
    assert!(
        log[0].message.contains(&format!("Gantry-Digest: {digest}")),
        "{}",
        log[0].message
    );
    let now =
        String::from_utf8(fake.file("acme/deploy", "main", file).expect("file")).expect("utf-8");
    assert_eq!(now, values(digest.as_str()));
    assert!(
        json["summary"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("- `{file}:4` image.digest: `{OLD}` → `{digest}`")),
        "{json}"
    );
    assert_eq!(
        env.digest_at("team/app:staging").await,
        None,
        "no registry tag for a gitops-only environment"
    );
    // Again: already there.
    let (output, json) = env.promote(&digest, "dev", "staging", &github);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(json["outputs"]["promoted"], "false");
    assert_eq!(fake.log("acme/deploy", "main").len(), 2, "no empty commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_writing_the_file_during_the_gates_is_a_conflict_and_nothing_is_written() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let file = "values.yaml";
    fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(OLD).as_bytes())],
        "init",
    );
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: staging\n    gitops:\n      repository: acme/deploy\n      targets:\n        - file: {file}\n          path: image.digest\npromotions:\n  - from: dev\n    to: staging\n    gates:\n      - name: slow\n        run: sleep 2\n"
    ));
    let digest = push(&env, "dev", b"build once").await;
    let url = fake.url();
    let mut command = env.command(&digest, "dev", "staging");
    command.args([
        "--policy",
        &policy,
        "--github-token",
        TOKEN,
        "--github-api-url",
        &url,
        "--deployment",
        "false",
    ]);
    let child = std::thread::spawn(move || command.output().expect("run"));
    std::thread::sleep(std::time::Duration::from_secs(1));
    let other = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    let theirs = fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(other).as_bytes())],
        "someone else's promotion",
    );
    let output = child.join().expect("join");
    let json = gantry_testkit::stdout_json(&output);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    says(
        &json,
        "failure",
        &format!(
            "acme/deploy@main:{file} now holds {other} (commit {}: someone else's promotion), not {OLD} as read before the checks",
            theirs.sha
        ),
    );
    let now =
        String::from_utf8(fake.file("acme/deploy", "main", file).expect("file")).expect("utf-8");
    assert_eq!(now, values(other), "theirs stands");
    assert_eq!(fake.log("acme/deploy", "main").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_url_gets_one_commit_of_every_file() {
    let Some(env) = setup() else { return };
    let Some(server) = GitServer::start().expect("git server") else {
        return;
    };
    let kustomization = format!(
        "kind: Kustomization\nimages:\n  - name: ghcr.io/acme/billing\n    digest: {OLD}\n"
    );
    let url = server
        .repository(
            "deploy.git",
            &[
                ("prod/values.yaml", values(OLD).as_bytes()),
                ("prod/kustomization.yaml", kustomization.as_bytes()),
            ],
        )
        .expect("repository");
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: production\n    gitops:\n      repository: {url}\n      targets:\n        - file: prod/values.yaml\n          path: image.digest\n        - file: prod/kustomization.yaml\n          kustomize-image: ghcr.io/acme/billing\n"
    ));
    let digest = push(&env, "dev", b"build once").await;
    let (output, json) = env.promote(
        &digest,
        "dev",
        "production",
        &[
            "--policy",
            &policy,
            "--gitops-username",
            USER,
            "--gitops-token",
            PASSWORD,
            "--deployment",
            "false",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains(PASSWORD) && !json.to_string().contains(PASSWORD));
    let bare = server.bare("deploy.git");
    let count = gantry_testkit::git::git(&bare, &["rev-list", "--count", "main"]).expect("count");
    assert_eq!(count.trim(), "2", "one commit for both files");
    let show = |file: &str| {
        gantry_testkit::git::git(&bare, &["show", &format!("main:{file}")]).expect("show")
    };
    assert_eq!(show("prod/values.yaml"), values(digest.as_str()));
    assert!(show("prod/kustomization.yaml").contains(&format!("digest: {digest}")));
    assert_eq!(
        json["outputs"]["gitops-commit"]
            .as_str()
            .unwrap_or_default(),
        gantry_testkit::git::git(&bare, &["rev-parse", "main"])
            .expect("head")
            .trim()
    );
}

/// The pull request a promotion to production opened: gantry's branch, reviewers and labels, a
/// title and body naming the edit and the checks, the verified-digest status on its head; the
/// base untouched.
fn check_proposal(
    fake: &GitHubFake,
    env: &crate::Env,
    digest: &str,
    file: &str,
    outputs: &serde_json::Value,
) {
    let pulls = fake.pulls("acme/deploy");
    assert_eq!(pulls.len(), 1);
    let pull = &pulls[0];
    assert_eq!(
        (pull.head.as_str(), pull.base.as_str()),
        ("gantry/production/app", "main")
    );
    assert_eq!(
        outputs["gitops-pull-request"],
        format!("https://github.com/acme/deploy/pull/{}", pull.number)
    );
    assert_eq!(
        (
            pull.reviewers.as_slice(),
            pull.teams.as_slice(),
            pull.labels.as_slice()
        ),
        (
            &["lead-lars".to_owned()][..],
            &["platform".to_owned()][..],
            &["promotion".to_owned()][..]
        )
    );
    assert!(
        pull.title
            .starts_with("promote(production): app 111111111111 → "),
        "{}",
        pull.title
    );
    for part in [
        format!("Promotes `{}@{digest}` to **production**", env.image()),
        format!("- `{file}:4` image.digest: `{OLD}` → `{digest}`"),
        "smoke test".to_owned(),
        "gantry/verified-digest".to_owned(),
    ] {
        assert!(pull.body.contains(&part), "{part:?} not in\n{}", pull.body);
    }
    // The base is untouched until the merge; the head commit carries the verified digest.
    assert_eq!(
        fake.file("acme/deploy", "main", file),
        Some(values(OLD).into_bytes())
    );
    let head = fake
        .head("acme/deploy", "gantry/production/app")
        .expect("branch");
    assert_eq!(outputs["gitops-commit"], head.as_str());
    assert_eq!(
        pull.auto_merge,
        Some(("SQUASH".to_owned(), head.clone())),
        "auto-merge on, for gantry's commit only"
    );
    assert_eq!(
        gantry_testkit::github::check_graphql(fake).expect("GitHub's GraphQL schema"),
        1
    );
    let statuses = fake.commit_statuses("acme/deploy", &head);
    assert_eq!(statuses[0]["context"], "gantry/verified-digest");
    assert!(
        statuses[0]["description"]
            .as_str()
            .unwrap_or_default()
            .starts_with(digest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_by_pull_request_is_proposed_reviewed_and_recorded_as_queued() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let file = "apps/billing/production/values.yaml";
    fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(OLD).as_bytes())],
        "init",
    );
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: production\n    gitops:\n      repository: acme/deploy\n      mode: pull-request\n      pull-request: {{reviewers: [lead-lars], team-reviewers: [platform], labels: [promotion], auto-merge: squash}}\n      targets:\n        - file: {file}\n          path: image.digest\npromotions:\n  - from: dev\n    to: production\n    gates:\n      - name: smoke test\n        run: \"true\"\n"
    ));
    let digest = push(&env, "dev", b"build once").await;
    let args = [
        "--policy",
        &policy,
        "--github-token",
        TOKEN,
        "--github-api-url",
        &fake.url(),
        "--repository",
        "acme/billing",
        "--sha",
        "0123456789abcdef0123456789abcdef01234567",
        "--actor",
        "dev-dana",
    ];
    let (output, json) = env.promote(&digest, "dev", "production", &args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        fake.prism_log()
    );
    let outputs = &json["outputs"];
    assert_eq!(
        outputs["promoted"], "false",
        "production holds it once merged"
    );
    check_proposal(&fake, &env, digest.as_str(), file, outputs);
    // Recorded as queued, naming the pull request.
    let deployments = fake.deployments();
    let gitops = &deployments[0]["_request"]["payload"]["gitops"];
    assert_eq!(
        gitops["commit"], json["outputs"]["gitops-commit"],
        "{gitops}"
    );
    assert_eq!(
        gitops["pull_request"],
        json["outputs"]["gitops-pull-request"]
    );
    assert_eq!(gitops["files"][0], file);
    let id = deployments[0]["id"].as_u64().expect("id");
    let last = fake.statuses(id).last().cloned().expect("a status");
    assert_eq!(last["state"], "queued");
    assert!(
        last["description"]
            .as_str()
            .unwrap_or_default()
            .contains("proposed in https://github.com/acme/deploy/pull/"),
        "{last}"
    );
    says(
        &json,
        "headline",
        "in pull request https://github.com/acme/deploy/pull/",
    );

    // Merged (the base holds the digest now): a re-run has nothing to do.
    fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(digest.as_str()).as_bytes())],
        "Merge pull request",
    );
    let (output, json) = env.promote(&digest, "dev", "production", &args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(json["outputs"]["promoted"], "false");
    says(&json, "headline", "already points at");
    assert_eq!(fake.pulls("acme/deploy").len(), 1);
}

/// An Argo CD stand-in whose applications track `acme/deploy`'s `main` on the GitHub stand-in.
fn argo_tracking(fake: &GitHubFake) -> Option<ArgoFake> {
    let standin = (**fake).clone();
    ArgoFake::start(move || standin.head("acme/deploy", "main").unwrap_or_default())
        .expect("Argo CD stand-in")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_by_commit_waits_until_argo_cd_runs_the_commit_and_fails_when_it_degrades() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let Some(argocd) = argo_tracking(&fake) else {
        return;
    };
    let file = "apps/billing/staging/values.yaml";
    let init = fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(OLD).as_bytes())],
        "init",
    );
    argocd.add_app("billing-staging", &init.sha, true, Ending::Healthy);
    argocd.add_app("billing-qa", &init.sha, true, Ending::Degraded);
    let policy = |application: &str| {
        env.write_policy(&format!(
            "version: 1\nenvironments:\n  - name: dev\n  - name: staging\n    gitops:\n      repository: acme/deploy\n      targets:\n        - file: {file}\n          path: image.digest\n      argocd: {{server: {}, application: {application}, wait: synced-healthy}}\n",
            argocd.url()
        ))
    };
    let args = |policy: &str| -> Vec<String> {
        let mut args = through(&fake, policy);
        args.extend(
            [
                "--argocd-token",
                ARGO_TOKEN,
                "--argocd-interval",
                "50ms",
                "--argocd-timeout",
                "20s",
            ]
            .map(str::to_owned),
        );
        args
    };
    let digest = push(&env, "dev", b"build once").await;
    let healthy = policy("billing-staging");
    let healthy_args = args(&healthy);
    let healthy_args: Vec<&str> = healthy_args.iter().map(String::as_str).collect();
    let (output, json) = env.promote(&digest, "dev", "staging", &healthy_args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        argocd.prism_log()
    );
    let commit = json["outputs"]["gitops-commit"]
        .as_str()
        .expect("commit")
        .to_owned();
    assert_eq!(json["outputs"]["argocd-revision"], commit.as_str());
    assert_eq!(
        argocd.synced("billing-staging").as_deref(),
        Some(commit.as_str())
    );
    assert!(argocd.syncs().is_empty(), "automated: no sync asked for");
    says(
        &json,
        "summary",
        &format!("`billing-staging` runs `{commit}`: Synced, Healthy"),
    );

    // The next digest into an application that degrades: exit 1, naming it.
    let next = push(&env, "dev", b"the next build").await;
    let degraded = policy("billing-qa");
    let degraded_args = args(&degraded);
    let degraded_args: Vec<&str> = degraded_args.iter().map(String::as_str).collect();
    let (output, json) = env.promote(&next, "dev", "staging", &degraded_args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    says(
        &json,
        "failure",
        "Argo CD application billing-qa did not run",
    );
    says(&json, "failure", "is Degraded at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_is_synced_by_hand_only_after_its_pull_request_is_merged() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let Some(argocd) = argo_tracking(&fake) else {
        return;
    };
    let file = "apps/billing/production/values.yaml";
    let init = fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(OLD).as_bytes())],
        "init",
    );
    argocd.add_app("billing-production", &init.sha, false, Ending::Healthy);
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: production\n    gitops:\n      repository: acme/deploy\n      mode: pull-request\n      targets:\n        - file: {file}\n          path: image.digest\n      argocd: {{server: {}, application: billing-production, sync: true}}\n",
        argocd.url()
    ));
    let digest = push(&env, "dev", b"build once").await;
    let args = [
        "--policy",
        &policy,
        "--github-token",
        TOKEN,
        "--github-api-url",
        &fake.url(),
        "--deployment",
        "false",
        "--argocd-token",
        ARGO_TOKEN,
        "--argocd-interval",
        "50ms",
    ];
    let (output, json) = env.promote(&digest, "dev", "production", &args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        !json["outputs"]["gitops-pull-request"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    assert!(
        argocd.requests().is_empty(),
        "nothing to sync before the merge: {:?}",
        argocd.requests()
    );
    assert_eq!(json["outputs"]["argocd-revision"], "");

    // Merged: the same command syncs production to the merge and waits for it.
    let merge = fake.commit_files(
        "acme/deploy",
        "main",
        &[(file, values(digest.as_str()).as_bytes())],
        "Merge pull request #1 from acme/gantry/production/app",
    );
    let (output, json) = env.promote(&digest, "dev", "production", &args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        argocd.prism_log()
    );
    let syncs = argocd.syncs();
    assert_eq!(syncs.len(), 1);
    assert_eq!(syncs[0]["revision"], merge.sha.as_str());
    assert_eq!(json["outputs"]["argocd-revision"], merge.sha.as_str());
    assert_eq!(
        argocd.synced("billing-production").as_deref(),
        Some(merge.sha.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argo_cd_application_without_a_token_is_refused_before_anything_moves() {
    let Some(env) = setup() else { return };
    let file = "apps/billing/staging/values.yaml";
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: staging\n    gitops:\n      repository: acme/deploy\n      targets:\n        - file: {file}\n          path: image.digest\n      argocd: {{server: https://argocd.example, application: billing-staging}}\n"
    ));
    let digest = push(&env, "dev", b"build once").await;
    let (output, json) = env.promote(
        &digest,
        "dev",
        "staging",
        &[
            "--policy",
            &policy,
            "--github-token",
            TOKEN,
            "--deployment",
            "false",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    says(
        &json,
        "error",
        "waits for Argo CD application billing-staging: give argocd-token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_files_on_github_are_one_commit_through_the_git_data_api() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let values_file = "apps/billing/staging/values.yaml";
    let kustomization_file = "apps/billing/staging/kustomization.yaml";
    let kustomization = |digest: &str| {
        format!(
            "resources: [../../base]\nimages:\n  - name: ghcr.io/acme/billing\n    digest: {digest} # gantry\n"
        )
    };
    fake.commit_files(
        "acme/deploy",
        "main",
        &[
            (values_file, values(OLD).as_bytes()),
            (kustomization_file, kustomization(OLD).as_bytes()),
        ],
        "init",
    );
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: staging\n    gitops:\n      repository: acme/deploy\n      targets:\n        - file: {values_file}\n          path: image.digest\n        - file: {kustomization_file}\n          kustomize-image: ghcr.io/acme/billing\n"
    ));
    let digest = push(&env, "dev", b"build once").await;
    let args = through(&fake, &policy);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (output, json) = env.promote(&digest, "dev", "staging", &args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        fake.prism_log()
    );
    let log = fake.log("acme/deploy", "main");
    assert_eq!(log.len(), 2, "one commit");
    assert_eq!(json["outputs"]["gitops-commit"], log[0].sha.as_str());
    assert_eq!(log[0].touched, [kustomization_file, values_file]);
    assert_eq!(log[0].parent.as_deref(), Some(log[1].sha.as_str()));
    assert_eq!(
        fake.file("acme/deploy", "main", kustomization_file),
        Some(kustomization(digest.as_str()).into_bytes())
    );
    assert_eq!(
        fake.file("acme/deploy", "main", values_file),
        Some(values(digest.as_str()).into_bytes())
    );
    says(
        &json,
        "summary",
        &format!("- `{kustomization_file}:4` images[0].digest: `{OLD}` → `{digest}`"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_only_environment_is_a_source_its_files_prove_the_digest() {
    let Some(env) = setup() else { return };
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let staging = "apps/billing/staging/values.yaml";
    let production = "apps/billing/production/values.yaml";
    fake.commit_files(
        "acme/deploy",
        "main",
        &[
            (staging, values(OLD).as_bytes()),
            (production, values(OLD).as_bytes()),
        ],
        "init",
    );
    let policy = env.write_policy(&format!(
        "version: 1\nenvironments:\n  - name: dev\n  - name: staging\n    gitops:\n      repository: acme/deploy\n      targets:\n        - file: {staging}\n          path: image.digest\n  - name: production\n    gitops:\n      repository: acme/deploy\n      targets:\n        - file: {production}\n          path: image.digest\n"
    ));
    let digest = push(&env, "dev", b"build once").await;
    let args = through(&fake, &policy);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Not in staging's files yet: refused, naming what they hold; nothing written.
    let (output, json) = env.promote(&digest, "staging", "production", &args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    says(
        &json,
        "failure",
        &format!(
            "source environment staging (acme/deploy@main:{staging}) holds {OLD}, not {digest}"
        ),
    );
    assert_eq!(fake.log("acme/deploy", "main").len(), 1);

    let (output, _) = env.promote(&digest, "dev", "staging", &args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let (output, json) = env.promote(&digest, "staging", "production", &args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        text(&output.stderr),
        fake.prism_log()
    );
    assert_eq!(json["outputs"]["promoted"], "true");
    assert_eq!(
        fake.file("acme/deploy", "main", production),
        Some(values(digest.as_str()).into_bytes())
    );
    // A digest dev holds but staging does not: refused.
    let other = push(&env, "dev", b"another build").await;
    let (output, _) = env.promote(&other, "staging", "production", &args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(
        fake.file("acme/deploy", "main", production),
        Some(values(digest.as_str()).into_bytes())
    );
}
