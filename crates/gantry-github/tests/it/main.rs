//! gantry-github against the fake GitHub behind prism: every request and every response is checked
//! against GitHub's OpenAPI description on the way.

use std::time::{Duration, Instant};

use gantry_github::{
    DeploymentState, GitHub, GitHubError, Membership, NewDeployment, NewDeploymentStatus, Options,
    Repository,
};
use gantry_testkit::github::{GitHubFake, TOKEN, Throttle};
use serde_json::json;

fn client(fake: &GitHubFake, token: &str) -> GitHub {
    let mut options = Options::new(gantry_secret::Secret::new(token));
    options.api_url = Some(fake.url());
    options.max_rate_limit_wait = Duration::from_secs(5);
    GitHub::new(options).expect("client")
}

fn repo() -> Repository {
    "acme/billing".parse().expect("repository")
}

macro_rules! fake {
    () => {
        match gantry_testkit::github::GitHubFake::start().expect("fake GitHub") {
            Some(fake) => fake,
            None => return,
        }
    };
}

#[tokio::test]
async fn reads_roles_and_team_membership() {
    let fake = fake!();
    fake.set_permission("acme/billing", "dev-dana", "write", "write");
    fake.set_permission("acme/billing", "lead-lars", "write", "maintain");
    fake.set_permission("acme/billing", "deployer", "write", "release-manager");
    fake.add_team_member("acme", "tech-leads", "lead-lars", "active");
    fake.add_team_member("acme", "tech-leads", "new-nina", "pending");
    let github = client(&fake, TOKEN);

    let dana = github
        .permission(&repo(), "dev-dana")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()));
    assert_eq!(dana.standard_role(), Some("write"));
    let lars = github.permission(&repo(), "lead-lars").await.expect("lars");
    assert_eq!(lars.standard_role(), Some("maintain"));
    let custom = github
        .permission(&repo(), "deployer")
        .await
        .expect("custom");
    assert_eq!(
        (custom.role_name.as_str(), custom.standard_role()),
        ("release-manager", Some("write"))
    );
    let stranger = github
        .permission(&repo(), "stranger")
        .await
        .expect_err("not a collaborator");
    assert!(
        matches!(stranger, GitHubError::Api { status: 404, .. }),
        "{stranger}"
    );

    assert_eq!(
        github
            .membership("acme", "tech-leads", "lead-lars")
            .await
            .expect("member"),
        Membership::Active
    );
    assert_eq!(
        github
            .membership("acme", "tech-leads", "new-nina")
            .await
            .expect("pending"),
        Membership::Pending
    );
    assert_eq!(
        github
            .membership("acme", "tech-leads", "dev-dana")
            .await
            .expect("none"),
        Membership::None
    );
    assert_eq!(github.requests(), 7);
    assert_eq!(
        fake.requests().len(),
        7,
        "every request passed prism's validation"
    );
}

#[tokio::test]
async fn records_a_deployment_and_its_statuses_and_lists_them_back() {
    let fake = fake!();
    let github = client(&fake, TOKEN);
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let digest = format!("sha256:{}", "ab".repeat(32));
    let deployment = github
        .create_deployment(
            &repo(),
            &NewDeployment {
                git_ref: sha.to_owned(),
                environment: "staging".to_owned(),
                description: format!("gantry promote-digest {digest}"),
                payload: json!({"image": "ghcr.io/acme/billing", "digest": digest, "previous_digest": ""}),
                production_environment: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()));
    assert_eq!(deployment.environment, "staging");
    assert_eq!(deployment.sha, sha);
    for state in [DeploymentState::InProgress, DeploymentState::Success] {
        github
            .create_deployment_status(
                &repo(),
                deployment.id,
                &NewDeploymentStatus {
                    state,
                    description: "promoted".to_owned(),
                    log_url: Some("https://github.com/acme/billing/actions/runs/42".to_owned()),
                    auto_inactive: true,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()));
    }
    let recorded = &fake.deployments()[0]["_request"];
    assert_eq!(
        recorded["auto_merge"],
        json!(false),
        "never merges the default branch in"
    );
    assert_eq!(
        recorded["required_contexts"],
        json!([]),
        "never waits on status checks"
    );
    assert_eq!(recorded["payload"]["digest"], json!(digest));
    let states: Vec<_> = fake
        .statuses(deployment.id)
        .iter()
        .map(|s| s["state"].clone())
        .collect();
    assert_eq!(states, [json!("in_progress"), json!("success")]);

    let listed = github
        .deployments(&repo(), "staging", 10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].payload["digest"], json!(digest));
    assert!(
        github
            .deployments(&repo(), "production", 10)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn waits_out_rate_limits_as_github_documents_them() {
    let fake = fake!();
    fake.set_permission("acme/billing", "dev-dana", "write", "write");
    fake.throttle(&[Throttle::RetryAfter, Throttle::PrimaryExhausted]);
    let github = client(&fake, TOKEN);
    let started = Instant::now();
    let dana = github
        .permission(&repo(), "dev-dana")
        .await
        .expect("answered after the limits");
    assert_eq!(dana.standard_role(), Some("write"));
    assert_eq!(
        github.requests(),
        3,
        "two limited attempts, then the answer"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the waits were sat out"
    );
}

#[tokio::test]
async fn a_refused_token_is_an_error_naming_the_request() {
    let fake = fake!();
    let github = client(&fake, "ghp_wrong");
    let err = github
        .permission(&repo(), "dev-dana")
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("GET /repos/acme/billing/collaborators/dev-dana/permission answered HTTP 401, expected 200: Requires authentication"), "{text}");
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_patience_is_reported_not_slept() {
    let fake = fake!();
    fake.throttle(&[Throttle::RetryAfter]);
    let mut options = Options::new(gantry_secret::Secret::new(TOKEN));
    options.api_url = Some(fake.url());
    options.max_rate_limit_wait = Duration::ZERO;
    let github = GitHub::new(options).expect("client");
    let err = github
        .permission(&repo(), "dev-dana")
        .await
        .expect_err("limited");
    assert!(matches!(err, GitHubError::RateLimited { .. }), "{err}");
    assert!(
        err.to_string().contains("rate limited for another 1 s"),
        "{err}"
    );
}

mod actions {
    use std::time::Duration;

    use gantry_github::{Cancel, Dispatched, Fetched, RunFilter, RunStatus};
    use gantry_testkit::github::{FakeWorkflow, RunPlan, TOKEN};
    use serde_json::{Map, Value, json};

    use super::{client, repo};

    fn inputs(correlation: &str) -> Map<String, Value> {
        let Value::Object(map) = json!({"correlation-id": correlation, "digest": "sha256:00"})
        else {
            unreachable!()
        };
        map
    }

    fn workflow(plan: RunPlan) -> FakeWorkflow {
        FakeWorkflow::new(
            "acme/billing",
            "integration.yml",
            &["correlation-id", "digest"],
            "integration ${{ inputs.correlation-id }}",
            plan,
        )
    }

    #[tokio::test]
    async fn a_dispatch_names_its_run_and_the_run_is_watched_with_etags() {
        let fake = fake!();
        let mut plan = RunPlan::new(
            // Queued long enough that two reads in a row see the same state, even on a busy
            // machine.
            Duration::from_secs(3),
            Duration::from_millis(600),
            "failure",
        );
        plan.jobs[0].2 = "line 1\nline 2\n::error::boom\n".to_owned();
        plan.verdict = Some(br#"{"passed": 3}"#.to_vec());
        fake.add_workflow(workflow(plan));
        let github = client(&fake, TOKEN);
        let dispatched = github
            .dispatch_workflow(&repo(), "integration.yml", "main", &inputs("gantry-abc"))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()));
        let Dispatched::Run { id, .. } = dispatched else {
            panic!("expected a run id, got {dispatched:?}")
        };
        let Fetched::Changed(run, etag) =
            github.workflow_run(&repo(), id, None).await.expect("run")
        else {
            panic!("first read is not conditional")
        };
        assert_eq!(run.display_title, "integration gantry-abc");
        assert!(etag.is_some());
        let again = github
            .workflow_run(&repo(), id, etag.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()));
        assert_eq!(again, Fetched::Unchanged);
        let counted = github.counted_requests();
        assert_eq!(counted, github.requests() - 1, "the 304 is not counted");
        tokio::time::sleep(Duration::from_secs(4)).await;
        let Fetched::Changed(done, _) = github
            .workflow_run(&repo(), id, etag.as_deref())
            .await
            .expect("run")
        else {
            panic!("a finished run changed")
        };
        assert_eq!(done.status, Some(RunStatus::Completed));
        assert_eq!(done.conclusion.as_deref(), Some("failure"));
        let jobs = github.run_jobs(&repo(), id, 1).await.expect("jobs");
        assert_eq!(jobs.len(), 1);
        let log = github
            .job_log_tail(&repo(), jobs[0].id, 1024)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()));
        assert!(log.ends_with("::error::boom\n"), "{log}");
        let artifacts = github.run_artifacts(&repo(), id).await.expect("artifacts");
        assert_eq!(artifacts[0].name, "gantry-verdict");
        let verdict = github
            .artifact_file(
                &repo(),
                artifacts[0].id,
                "gantry-verdict.json",
                1 << 20,
                64 * 1024,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()));
        assert_eq!(verdict, br#"{"passed": 3}"#);
        // GitHub redirects both to its storage: gantry follows, and the token stays behind.
        assert_eq!(fake.storage_authorization(), [false, false]);
        let tail = github
            .job_log_tail(&repo(), jobs[0].id, 14)
            .await
            .expect("log");
        assert_eq!(tail, "::error::boom\n", "only the tail is kept");
        let too_small = github
            .artifact_file(&repo(), artifacts[0].id, "gantry-verdict.json", 1 << 20, 4)
            .await
            .expect_err("a verdict over the limit");
        assert!(
            too_small.to_string().contains("larger than 4 bytes"),
            "{too_small}"
        );
        assert_eq!(
            github.cancel_run(&repo(), id).await.expect("cancel"),
            Cancel::AlreadyFinished
        );
        assert_eq!(
            github
                .run_concurrency_groups(&repo(), id)
                .await
                .expect("groups"),
            Some(Vec::new())
        );
    }

    #[tokio::test]
    async fn an_old_ghes_gets_the_dispatch_again_without_the_field() {
        let fake = fake!();
        fake.add_workflow(workflow(RunPlan::new(
            Duration::from_secs(5),
            Duration::from_secs(5),
            "success",
        )));
        fake.act_as_old_ghes(true);
        let github = client(&fake, TOKEN);
        let dispatched = github
            .dispatch_workflow(&repo(), "integration.yml", "main", &inputs("gantry-ghes"))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()));
        assert_eq!(dispatched, Dispatched::Accepted);
        assert_eq!(fake.runs().len(), 1, "one run, not two");
        let filter = RunFilter {
            workflow: Some("integration.yml".to_owned()),
            event: Some("workflow_dispatch".to_owned()),
            ..RunFilter::default()
        };
        let Fetched::Changed(runs, etag) = github
            .workflow_runs(&repo(), &filter, None)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", fake.prism_log()))
        else {
            panic!("unconditional read")
        };
        assert_eq!(runs[0].display_title, "integration gantry-ghes");
        assert_eq!(
            github
                .workflow_runs(&repo(), &filter, etag.as_deref())
                .await
                .expect("again"),
            Fetched::Unchanged
        );
        assert_eq!(
            github
                .cancel_run(&repo(), runs[0].id)
                .await
                .expect("cancel"),
            Cancel::Requested
        );
    }
}
