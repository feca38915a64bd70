//! The pull-request flow against the GitHub stand-in behind prism (every request and response
//! checked against GitHub's OpenAPI description): one pull request per environment and app, one
//! commit on gantry's branch, reviewers, labels and the verified-digest status on its head; a
//! newer digest supersedes the older in the same pull request; a re-run changes nothing; a base
//! that moved to another digest is a conflict.

use std::fmt::Write as _;

use gantry_github::{CommitState, GitHub, NewCommitStatus, Options, Person, Repository};
use gantry_gitops::Target;
use gantry_gitops::github::WriteFiles;
use gantry_gitops::pull::{Proposal, Proposed, propose};
use gantry_testkit::github::{GitHubFake, TOKEN};

const DEPLOY: &str = "acme/deploy";
const FILE: &str = "apps/billing/production/values.yaml";
const HEAD: &str = "gantry/production/billing";

fn digest(n: u32) -> String {
    format!("sha256:{n:08x}{}", "cd".repeat(28))
}

fn values(digest: &str) -> String {
    format!("image:\n  repository: ghcr.io/acme/billing\n  digest: {digest} # gantry\n")
}

fn client(fake: &GitHubFake) -> GitHub {
    let mut options = Options::new(gantry_secret::Secret::new(TOKEN));
    options.api_url = Some(fake.url());
    GitHub::new(options).expect("client")
}

async fn proposal(github: &GitHub, new: &str, expected: Option<&str>) -> Proposed {
    let repository: Repository = DEPLOY.parse().expect("repository");
    let files = vec![(
        FILE.to_owned(),
        vec![Target::path("image.digest", false).expect("path")],
    )];
    let committer = Person {
        name: "gantry".into(),
        email: "gantry@users.noreply.github.com".into(),
    };
    let message =
        |previous: Option<&str>| format!("promote(production): billing {previous:?} → {new}");
    let body = |changes: &[gantry_gitops::Change], previous: Option<&str>| {
        let mut text = format!("Promotes `{new}` (was `{previous:?}`).\n\n");
        for c in changes {
            let _ = writeln!(text, "- {}:{}: {} → {}", c.file, c.line, c.old, c.new);
        }
        text
    };
    let status = NewCommitStatus {
        state: CommitState::Success,
        target_url: None,
        description: format!("verified {new}"),
        context: "gantry/verified-digest".to_owned(),
    };
    let reviewers = ["lead-lars".to_owned()];
    let teams = ["platform".to_owned()];
    let labels = ["promotion".to_owned(), "production".to_owned()];
    propose(
        github,
        &Proposal {
            write: WriteFiles {
                repository: &repository,
                branch: "main",
                files: &files,
                digest: new,
                expected,
                message: &message,
                author: None,
                committer: &committer,
            },
            head: HEAD,
            title: &format!("promote(production): billing {}", &new[7..19]),
            body: &body,
            reviewers: &reviewers,
            team_reviewers: &teams,
            labels: &labels,
            status: &status,
            auto_merge: Some("SQUASH"),
        },
    )
    .await
    .expect("proposal")
}

/// The head commit carries exactly one verified-digest status, naming `digest`, and auto-merge is
/// on for that commit only.
fn assert_verified(fake: &GitHubFake, commit: &str, digest: &str) {
    let statuses = fake.commit_statuses(DEPLOY, commit);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0]["context"], "gantry/verified-digest");
    assert_eq!(statuses[0]["state"], "success");
    assert_eq!(statuses[0]["description"], format!("verified {digest}"));
    assert_eq!(
        fake.pulls(DEPLOY)[0].auto_merge,
        Some(("SQUASH".to_owned(), commit.to_owned())),
        "auto-merge on, for the commit gantry wrote only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_proposes_the_digest_and_a_newer_one_supersedes_it() {
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    let base = fake.commit_files(DEPLOY, "main", &[(FILE, values(&digest(1)).as_bytes())], "");
    let github = client(&fake);
    let (d1, d2, d3) = (digest(1), digest(2), digest(3));
    let before = fake.requests().len();
    let first = proposal(&github, &d2, Some(&d1)).await;
    let requests = fake.requests().len() - before;
    let Proposed::Proposed {
        pull,
        opened: true,
        commit,
        changes,
        previous,
        superseded: None,
        auto_merge: Some(Ok(())),
    } = first
    else {
        panic!("{first:?}\n{}", fake.prism_log())
    };
    assert_eq!(requests, 12, "{requests} requests: {:#?}", fake.requests());
    assert_eq!(previous.as_deref(), Some(d1.as_str()));
    assert_eq!((changes.len(), changes[0].line), (1, 3));
    // The base is untouched; the branch is the base plus exactly one commit.
    assert_eq!(
        fake.file(DEPLOY, "main", FILE),
        Some(values(&d1).into_bytes())
    );
    assert_eq!(
        fake.file(DEPLOY, HEAD, FILE),
        Some(values(&d2).into_bytes())
    );
    let log = fake.log(DEPLOY, HEAD);
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].sha.as_str(), log[0].parent.as_deref()),
        (commit.as_str(), Some(base.sha.as_str()))
    );
    let pulls = fake.pulls(DEPLOY);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].number, pull.number);
    assert_eq!(
        (
            pulls[0].head.as_str(),
            pulls[0].base.as_str(),
            pulls[0].state.as_str()
        ),
        (HEAD, "main", "open")
    );
    assert_eq!(pulls[0].labels, ["promotion", "production"]);
    assert_eq!(
        (pulls[0].reviewers.as_slice(), pulls[0].teams.as_slice()),
        (&["lead-lars".to_owned()][..], &["platform".to_owned()][..])
    );
    assert!(
        pulls[0].body.contains(&format!("{FILE}:3: {d1} → {d2}")),
        "{}",
        pulls[0].body
    );
    assert_eq!(pull.head_sha, commit);
    assert_verified(&fake, &commit, &d2);

    // The same digest again: the pull request proposes it already; no new commit.
    let again = proposal(&github, &d2, Some(&d1)).await;
    assert!(
        matches!(&again, Proposed::Unchanged { pull: Some(p), previous } if p.number == pull.number && previous.as_deref() == Some(d1.as_str())),
        "{again:?}"
    );
    assert_eq!(fake.log(DEPLOY, HEAD).len(), 2);

    // A newer digest: the same pull request, its branch again the base plus one commit.
    let newer = proposal(&github, &d3, Some(&d1)).await;
    let Proposed::Proposed {
        pull: updated,
        opened: false,
        commit: newer_commit,
        superseded,
        ..
    } = newer
    else {
        panic!("{newer:?}\n{}", fake.prism_log())
    };
    assert_eq!(updated.number, pull.number);
    assert_eq!(superseded.as_deref(), Some(d2.as_str()));
    assert_eq!(fake.pulls(DEPLOY).len(), 1, "no second pull request");
    let log = fake.log(DEPLOY, HEAD);
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].sha.as_str(), log[0].parent.as_deref()),
        (newer_commit.as_str(), Some(base.sha.as_str()))
    );
    assert_eq!(
        fake.file(DEPLOY, HEAD, FILE),
        Some(values(&d3).into_bytes())
    );
    assert_verified(&fake, &newer_commit, &d3);
    assert_eq!(
        gantry_testkit::github::check_graphql(&fake).expect("GitHub's GraphQL schema"),
        2
    );
    assert!(fake.pulls(DEPLOY)[0].body.contains(&format!("{d1} → {d3}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_moved_to_another_digest_is_a_conflict_and_a_merged_one_needs_nothing() {
    let Some(fake) = GitHubFake::start().expect("fake GitHub") else {
        return;
    };
    fake.commit_files(
        DEPLOY,
        "main",
        &[(FILE, values(&digest(1)).as_bytes())],
        "init",
    );
    let github = client(&fake);
    let (d1, d3) = (digest(1), digest(3));
    let Proposed::Proposed { .. } = proposal(&github, &d3, Some(&d1)).await else {
        panic!("{}", fake.prism_log())
    };
    // The base moved to another digest meanwhile: a conflict naming it, nothing written.
    let other = digest(9);
    fake.commit_files(
        DEPLOY,
        "main",
        &[(FILE, values(&other).as_bytes())],
        "hotfix",
    );
    let conflict = proposal(&github, &digest(4), Some(&d1)).await;
    let Proposed::Conflict {
        expected,
        found,
        commit,
    } = conflict
    else {
        panic!("{conflict:?}")
    };
    assert_eq!(
        (expected.as_deref(), found.as_deref()),
        (Some(d1.as_str()), Some(other.as_str()))
    );
    assert_eq!(commit.map(|c| c.subject).as_deref(), Some("hotfix"));
    assert_eq!(
        fake.file(DEPLOY, HEAD, FILE),
        Some(values(&d3).into_bytes()),
        "the branch is as it was"
    );

    // The base holds the digest already (merged): nothing to propose.
    let merged = proposal(&github, &other, None).await;
    assert_eq!(
        merged,
        Proposed::Unchanged {
            pull: None,
            previous: Some(other.clone())
        }
    );
}
