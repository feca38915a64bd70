//! The Prometheus check against a real Prometheus scraping metrics the test sets: real `PromQL`.

use std::time::Duration;

use canary_watch::decide::Verdict;
use canary_watch::prometheus::{PrometheusCheck, Reduce};
use canary_watch::watch::Check as _;
use gantry_testkit::prometheus::Prometheus;

const METRICS: &str = "canary_error_ratio{pod=\"a\"} 0.01\ncanary_latency_seconds{pod=\"a\"} 0.2\ncanary_latency_seconds{pod=\"b\"} 0.4\ncanary_nan NaN\n";

fn check(prometheus: &str, query: &str, reduce: Reduce, max: Option<f64>) -> PrometheusCheck {
    let roots = gantry_http::roots(&[]).expect("roots");
    PrometheusCheck {
        name: "errors".to_owned(),
        url: prometheus.to_owned(),
        query: query.to_owned(),
        reduce,
        min: None,
        max,
        on_empty: Verdict::Inconclusive,
        on_nan: Verdict::Inconclusive,
        auth: None,
        client: gantry_http::client(&roots, Duration::from_secs(2)).expect("client"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_pass_fail_and_say_when_they_cannot_judge() {
    let Some(prometheus) = tokio::task::spawn_blocking(|| Prometheus::start(METRICS))
        .await
        .expect("join")
        .expect("prometheus")
    else {
        return;
    };
    let url = prometheus.url();
    let run = |query: &str, reduce: Reduce, max: Option<f64>| {
        let check = check(&url, query, reduce, max);
        async move { check.run().await }
    };

    let ok = run("canary_error_ratio", Reduce::One, Some(0.05)).await;
    assert_eq!(
        (ok.verdict, ok.value.as_str()),
        (Verdict::Pass, "0.01"),
        "{ok:?}"
    );
    assert_eq!(ok.bound, "value ≤ 0.05");

    let empty = run("canary_absent_metric", Reduce::One, Some(0.05)).await;
    assert_eq!(empty.verdict, Verdict::Inconclusive, "{empty:?}");
    let nan = run("canary_nan", Reduce::One, Some(0.05)).await;
    assert_eq!(
        (nan.verdict, nan.value.as_str()),
        (Verdict::Inconclusive, "NaN")
    );

    let several = run("canary_latency_seconds", Reduce::One, Some(0.3)).await;
    assert_eq!(several.verdict, Verdict::Error, "{several:?}");
    assert!(several.value.contains("2 series"), "{several:?}");
    let max = run("canary_latency_seconds", Reduce::Max, Some(0.3)).await;
    assert_eq!((max.verdict, max.value.as_str()), (Verdict::Fail, "0.4"));
    let all = run("canary_latency_seconds", Reduce::All, Some(0.3)).await;
    assert_eq!(all.verdict, Verdict::Fail, "{all:?}");
    let any = run("canary_latency_seconds", Reduce::Any, Some(0.3)).await;
    assert_eq!(any.verdict, Verdict::Pass, "{any:?}");
    let avg = run("canary_latency_seconds", Reduce::Avg, Some(0.35)).await;
    assert_eq!(avg.verdict, Verdict::Pass, "{avg:?}");
    let sum = run("sum(canary_latency_seconds)", Reduce::One, Some(0.5)).await;
    assert_eq!(sum.verdict, Verdict::Fail, "PromQL's own sum: {sum:?}");

    let broken = run("rate(", Reduce::One, Some(0.05)).await;
    assert_eq!(broken.verdict, Verdict::Error, "{broken:?}");
    assert!(broken.value.contains("400"), "{broken:?}");

    // The canary turns bad: the next scrape says so.
    prometheus.metrics.set(&METRICS.replace(
        "canary_error_ratio{pod=\"a\"} 0.01",
        "canary_error_ratio{pod=\"a\"} 0.5",
    ));
    tokio::task::spawn_blocking({
        let wait = Duration::from_millis(600);
        move || std::thread::sleep(wait)
    })
    .await
    .expect("wait");
    let bad = run("canary_error_ratio", Reduce::One, Some(0.05)).await;
    assert_eq!(
        (bad.verdict, bad.value.as_str()),
        (Verdict::Fail, "0.5"),
        "{bad:?}"
    );

    drop(prometheus);
    let gone = run("canary_error_ratio", Reduce::One, Some(0.05)).await;
    assert_eq!(gone.verdict, Verdict::Error, "{gone:?}");
}
