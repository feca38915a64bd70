//! The signed canary verdict: an in-toto statement on the canary digest that says what was
//! watched, by which limits, for how long, and how it ended — `passed` (healthy) or `failed`
//! (rolled back, or would have been). Hold, inconclusive, superseded and cancelled watches prove
//! nothing about the digest and sign nothing. promote-digest reads it: `require-attestation:
//! [canary]` needs the newest verdict passed, and a digest whose newest verdict failed is refused
//! unless `allow-rolled-back`.

use anyhow::Context as _;
use gantry_oci::{Client, Digest, Reference};
use gantry_sigstore::oci::CANARY_PREDICATE;
use gantry_sigstore::sign::Identity;
use serde_json::{Value, json};

use crate::args::Args;
use crate::watch::Watched;

/// `passed` or `failed` for an outcome that says something about the digest.
pub fn result(outcome: &str) -> Option<&'static str> {
    match outcome {
        "healthy" => Some("passed"),
        "rolled-back" | "would-roll-back" => Some("failed"),
        _ => None,
    }
}

/// What the statement's predicate holds.
pub struct Facts<'a> {
    pub args: &'a Args,
    pub tag: &'a Reference,
    pub previous: &'a str,
    pub watched: &'a Watched,
    pub outcome: &'a str,
    pub reason: &'a str,
    pub started_at: &'a str,
    pub decided_at: &'a str,
    pub run_url: Option<String>,
}

/// The predicate, with `result` (`passed` or `failed`).
pub fn predicate(facts: &Facts<'_>, result: &str) -> Value {
    let args = facts.args;
    let checks: Vec<Value> = facts
        .watched
        .ticks
        .first()
        .map(|tick| {
            tick.measurements
                .iter()
                .map(|m| json!({"name": m.check, "bound": m.bound}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "outcome": result,
        "decision": facts.outcome,
        "environment": args.env,
        "tag": facts.tag.to_string(),
        "previous_digest": facts.previous,
        "reason": facts.reason,
        "checks": checks,
        "limits": args.limits(),
        "window": {
            "interval_ms": u64::try_from(args.interval.as_millis()).unwrap_or(u64::MAX),
            "probe_timeout_ms": u64::try_from(args.probe_timeout.as_millis()).unwrap_or(u64::MAX),
            "ticks": facts.watched.ticks.iter().filter(|t| t.counted).count(),
            "warm_up_ticks": facts.watched.ticks.iter().filter(|t| !t.counted).count(),
            "started_at": facts.started_at,
            "decided_at": facts.decided_at,
        },
        "decided_at": facts.decided_at,
        "run_url": facts.run_url,
    })
}

/// Signs the statement and attaches it to `tag@digest` (once: a rerun finds the same one).
pub async fn attest(
    client: &Client,
    http: &reqwest::Client,
    identity: &Identity,
    tag: &Reference,
    digest: &Digest,
    predicate: &Value,
) -> anyhow::Result<Digest> {
    let at = tag.with_digest(digest.clone());
    let statement =
        gantry_sigstore::sign::statement(&tag.name(), digest, CANARY_PREDICATE, predicate);
    let (attestation, _) =
        gantry_sigstore::sign::attest(client, http, identity, &at, &statement, CANARY_PREDICATE)
            .await
            .with_context(|| format!("attaching the canary verdict to {at}"))?;
    Ok(attestation)
}
