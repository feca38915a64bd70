//! The watch against real HTTP: a canary service whose health the test turns bad, a known-good
//! control service, and between them and the watcher a "runner network" the test can cut. A cut
//! network (the control probe fails too) never rolls a healthy canary back; a real outage is still
//! caught.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use canary_watch::decide::{Cause, Decision, Limits, Verdict};
use canary_watch::http::{BodyCondition, HttpCheck};
use canary_watch::watch::{Check, Schedule, watch};
use tokio::net::{TcpListener, TcpStream};

mod prometheus;
mod rollback;
mod tool;

/// A service answering `/health` with the status the test sets.
async fn service(status: Arc<AtomicU16>) -> SocketAddr {
    let app = Router::new()
        .route(
            "/health",
            get(|State(status): State<Arc<AtomicU16>>| async move {
                let code = StatusCode::from_u16(status.load(Ordering::Relaxed))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (code, "{\"status\":\"ok\"}")
            }),
        )
        .with_state(status);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The runner's network to `upstream`: forwards connections, or drops them while cut.
async fn network(upstream: SocketAddr, cut: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if cut.load(Ordering::Relaxed) {
                drop(inbound);
                continue;
            }
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                    return;
                };
                // A cut breaks the connections already open too (the client's pool).
                let severed = async {
                    while !cut.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    () = severed => {}
                }
            });
        }
    });
    addr
}

struct Setup {
    canary_status: Arc<AtomicU16>,
    cut: Arc<AtomicBool>,
    canary: HttpCheck,
    control: HttpCheck,
}

async fn setup() -> Setup {
    let canary_status = Arc::new(AtomicU16::new(200));
    let control_status = Arc::new(AtomicU16::new(200));
    let cut = Arc::new(AtomicBool::new(false));
    let canary = network(service(canary_status.clone()).await, cut.clone()).await;
    let control = network(service(control_status).await, cut.clone()).await;
    let roots = gantry_http::roots(&[]).expect("roots");
    let client = gantry_http::client(&roots, Duration::from_millis(300)).expect("client");
    let check = |name: &str, addr: SocketAddr| HttpCheck {
        name: name.to_owned(),
        url: format!("http://{addr}/health"),
        expect: canary_watch::http::Statuses::default(),
        body: Some(BodyCondition::Regex(
            regex::Regex::new("\"status\":\"ok\"").expect("regex"),
        )),
        headers: reqwest::header::HeaderMap::new(),
        client: client.clone(),
    };
    Setup {
        canary: check("health", canary),
        control: check("control", control),
        canary_status,
        cut,
    }
}

fn schedule() -> Schedule {
    Schedule {
        interval: Duration::from_millis(500),
        timeout: Duration::from_millis(400),
        warm_up: 1,
        ticks: 16,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_network_never_rolls_back_and_a_real_outage_still_does() {
    let setup = setup().await;
    let checks: Vec<Box<dyn Check>> = vec![Box::new(setup.canary)];
    // The network goes down for 3 ticks from the 3rd, and comes back; then the canary fails
    // for real from the 9th tick.
    let cut = setup.cut.clone();
    let status = setup.canary_status.clone();
    let script = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_250)).await;
        cut.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        cut.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        status.store(503, Ordering::Relaxed);
    });
    let watched = watch(&checks, Some(&setup.control), Limits::default(), schedule()).await;
    script.await.expect("script");
    let record: Vec<(Verdict, String)> = watched
        .ticks
        .iter()
        .map(|t| (t.verdict, t.measurements[0].value.clone()))
        .collect();
    assert_eq!(
        watched.decision,
        Decision::RollBack {
            cause: Cause::ConsecutiveFailures
        },
        "{record:#?}"
    );
    let errors: Vec<&(Verdict, String)> = record
        .iter()
        .filter(|(v, _)| *v == Verdict::Error)
        .collect();
    assert!(!errors.is_empty(), "the cut was seen: {record:#?}");
    assert!(
        errors
            .iter()
            .all(|(_, value)| value.contains("control probe control failed")),
        "{record:#?}"
    );
    // The rollback came from the real outage: its deciding ticks are HTTP 503s.
    let failures: Vec<&(Verdict, String)> =
        record.iter().filter(|(v, _)| *v == Verdict::Fail).collect();
    assert_eq!(failures.len(), 3, "{record:#?}");
    assert!(
        failures.iter().all(|(_, value)| value == "HTTP 503"),
        "{record:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_control_probe_a_refused_canary_is_a_failure() {
    let setup = setup().await;
    setup.cut.store(true, Ordering::Relaxed);
    let checks: Vec<Box<dyn Check>> = vec![Box::new(setup.canary)];
    let watched = watch(&checks, None, Limits::default(), schedule()).await;
    assert_eq!(
        watched.decision,
        Decision::RollBack {
            cause: Cause::ConsecutiveFailures
        }
    );
    assert_eq!(watched.ticks.len(), 4, "a warm-up tick, then 3 failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_match_fails_and_names_what_it_found() {
    let status = Arc::new(AtomicU16::new(200));
    let addr = service(status).await;
    let roots = gantry_http::roots(&[]).expect("roots");
    let check = HttpCheck {
        name: "version".to_owned(),
        url: format!("http://{addr}/health"),
        expect: "200".parse().expect("statuses"),
        body: Some(BodyCondition::Regex(
            regex::Regex::new("\"version\":\"2").expect("regex"),
        )),
        headers: reqwest::header::HeaderMap::new(),
        client: gantry_http::client(&roots, Duration::from_millis(300)).expect("client"),
    };
    let measured = check.run().await;
    assert_eq!(measured.verdict, Verdict::Fail);
    assert!(measured.value.contains("does not match"), "{measured:?}");
    assert!(measured.bound.contains("version"), "{measured:?}");
}
