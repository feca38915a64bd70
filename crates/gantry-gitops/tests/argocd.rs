//! The Argo CD wait against the Argo CD stand-in behind prism (every request and answer checked
//! against Argo CD's own Swagger description): a manual application is synced to the commit and
//! waited for; an automated one is waited for without a sync; a failed operation or a degraded
//! application at the commit ends the wait at once; a commit Argo CD never reaches times out
//! naming what it last saw; a wrong token is an error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_gitops::argocd::{ArgoCd, ArgoError, Deployed, Until, Wait};
use gantry_secret::Secret;
use gantry_testkit::argocd::{ArgoFake, Ending, TOKEN};

const OLD: &str = "1111111111111111111111111111111111111111";
const NEW: &str = "2222222222222222222222222222222222222222";

fn fake() -> Option<(ArgoFake, Arc<Mutex<String>>)> {
    let head = Arc::new(Mutex::new(OLD.to_owned()));
    let reads = head.clone();
    let fake = ArgoFake::start(move || reads.lock().expect("head").clone()).expect("Argo CD")?;
    Some((fake, head))
}

fn client(fake: &ArgoFake, token: &str) -> ArgoCd {
    let roots = gantry_http::roots(&[]).expect("roots");
    ArgoCd::new(&fake.url(), Secret::new(token), &roots).expect("client")
}

fn wait<'a>(application: &'a str, revision: &'a str, sync: bool, timeout: Duration) -> Wait<'a> {
    Wait {
        application,
        revision,
        until: Some(Until::SyncedHealthy),
        sync,
        timeout,
        interval: Duration::from_millis(50),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_application_is_synced_to_the_commit_and_an_automated_one_waited_for() {
    let Some((fake, head)) = fake() else { return };
    fake.add_app("billing-production", OLD, false, Ending::Healthy);
    fake.add_app("billing-staging", OLD, true, Ending::Healthy);
    *head.lock().expect("head") = NEW.to_owned();
    let argo = client(&fake, TOKEN);

    let deployed = argo
        .wait(&wait(
            "billing-production",
            NEW,
            true,
            Duration::from_secs(10),
        ))
        .await
        .expect("wait");
    assert!(
        matches!(&deployed, Deployed::Ready { health, .. } if health == "Healthy"),
        "{deployed:?}\n{}",
        fake.prism_log()
    );
    let syncs = fake.syncs();
    assert_eq!(syncs.len(), 1);
    assert_eq!(syncs[0]["revision"], NEW);
    assert_eq!(syncs[0]["prune"], false);
    assert_eq!(fake.synced("billing-production").as_deref(), Some(NEW));

    let deployed = argo
        .wait(&wait(
            "billing-staging",
            NEW,
            false,
            Duration::from_secs(10),
        ))
        .await
        .expect("wait");
    assert!(matches!(deployed, Deployed::Ready { .. }), "{deployed:?}");
    assert_eq!(
        fake.syncs().len(),
        1,
        "no sync for an automated application"
    );
    let reads: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("billing-staging"))
        .collect();
    assert!(
        reads[0].ends_with("?refresh=normal"),
        "the first read refreshes: {reads:?}"
    );
    assert!(reads.len() >= 3, "{reads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_or_a_degraded_application_ends_the_wait_at_once() {
    let Some((fake, head)) = fake() else { return };
    fake.add_app("failing", OLD, false, Ending::Failed);
    fake.add_app("degraded", OLD, true, Ending::Degraded);
    *head.lock().expect("head") = NEW.to_owned();
    let argo = client(&fake, TOKEN);
    let long = Duration::from_mins(1);

    let started = std::time::Instant::now();
    let failed = argo
        .wait(&wait("failing", NEW, true, long))
        .await
        .expect("wait");
    let Deployed::Failed { why } = failed else {
        panic!("{failed:?}\n{}", fake.prism_log())
    };
    assert!(
        why.contains(&format!("the sync of {NEW} ended Failed")),
        "{why}"
    );
    assert!(why.contains("admission webhook denied"), "{why}");

    let degraded = argo
        .wait(&wait("degraded", NEW, false, long))
        .await
        .expect("wait");
    let Deployed::Failed { why } = degraded else {
        panic!("{degraded:?}")
    };
    assert!(why.contains(&format!("Degraded at {NEW}")), "{why}");
    assert!(started.elapsed() < Duration::from_secs(10), "fail fast");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_never_reached_times_out_and_a_wrong_token_is_refused() {
    let Some((fake, _head)) = fake() else { return };
    fake.add_app("billing-staging", OLD, true, Ending::Healthy);
    let argo = client(&fake, TOKEN);
    // The branch's head stays OLD: Argo CD never sees NEW.
    let timed_out = argo
        .wait(&wait(
            "billing-staging",
            NEW,
            false,
            Duration::from_millis(400),
        ))
        .await
        .expect("wait");
    let Deployed::TimedOut { last } = timed_out else {
        panic!("{timed_out:?}")
    };
    assert_eq!(
        last,
        format!("sync Synced at {OLD}, health Healthy, operation none")
    );

    let wrong = client(&fake, "not-the-token");
    let refused = wrong
        .wait(&wait("billing-staging", NEW, false, Duration::from_secs(5)))
        .await;
    assert!(
        matches!(&refused, Err(ArgoError::Answer { status: 401, message, .. }) if message == "no session information"),
        "{refused:?}"
    );
    let missing = argo
        .wait(&wait("nothing-here", NEW, false, Duration::from_secs(5)))
        .await;
    assert!(
        matches!(&missing, Err(ArgoError::Answer { status: 404, .. })),
        "{missing:?}"
    );
}
