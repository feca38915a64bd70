//! Telling people: a webhook sent once the decision is acted on (after the rollback, so it can
//! never delay it), retried with back-off, bounded in time. Three bodies:
//!
//! - `json`: a `CloudEvents` 1.0 event in structured mode (`application/cloudevents+json`), type
//!   `dev.gantry.canary.<outcome>`, the decision in `data`; with a secret, the header
//!   `X-Gantry-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (GitHub's webhook convention).
//! - `slack`: an incoming webhook's `text` and `blocks`, the text escaped as Slack asks (`&`,
//!   `<`, `>`), so that a check's value cannot mention anyone or link anywhere.
//! - `teams`: a Teams Workflows webhook's message with one Adaptive Card (1.4); Office 365
//!   connectors, the old way, were retired.
//!
//! The URL is a secret: it never appears in a message (reqwest's errors carry it; they are
//! stripped of it).

use std::time::Duration;

use gantry_secret::Secret;
use serde::Serialize;
use serde_json::{Value, json};

use crate::args::WebhookFormat;

/// What a notification says.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// `healthy`, `rolled-back`, `hold`, `inconclusive`, `superseded`, `cancelled`.
    pub outcome: String,
    /// One sentence.
    pub headline: String,
    /// The environment.
    pub environment: String,
    /// The image repository.
    pub image: String,
    /// The canary's digest.
    pub digest: String,
    /// The rollback target.
    pub previous_digest: String,
    /// Why (the deciding check, value, bound, streak).
    pub reason: String,
    /// When the decision was made (RFC 3339).
    pub decided_at: String,
    /// The run's page, when known.
    pub run_url: Option<String>,
}

/// Where and how to send.
pub struct Webhook {
    /// The URL (secret).
    pub url: Secret,
    /// The body's shape.
    pub format: WebhookFormat,
    /// The HMAC key (json only).
    pub secret: Option<Secret>,
    /// The client.
    pub client: reqwest::Client,
}

/// Attempts, and the pause before each retry.
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1500)];

impl Webhook {
    /// Sends `notice`, retrying a transport failure, a 429 or a 5xx; `Err` says why it did not
    /// arrive (without the URL).
    pub async fn send(&self, notice: &Notice) -> Result<u16, String> {
        let (body, content_type) = self.body(notice);
        let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let mut last = String::new();
        for attempt in 0..=BACKOFF.len() {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF[attempt - 1]).await;
            }
            let mut request = self
                .client
                .post(self.url.expose())
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes.clone());
            if let (WebhookFormat::Json, Some(key)) = (self.format, &self.secret) {
                request = request.header("X-Gantry-Signature-256", signature(key, &bytes));
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return Ok(response.status().as_u16());
                }
                Ok(response) => {
                    let status = response.status();
                    last = format!("the webhook answered HTTP {}", status.as_u16());
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        break;
                    }
                }
                Err(error) => {
                    last = format!(
                        "the webhook could not be reached: {}",
                        gantry_http::explain(&error.without_url())
                    );
                }
            }
        }
        Err(last)
    }

    fn body(&self, notice: &Notice) -> (Value, &'static str) {
        match self.format {
            WebhookFormat::Json => (cloud_event(notice), "application/cloudevents+json"),
            WebhookFormat::Slack => (slack(notice), "application/json"),
            WebhookFormat::Teams => (teams(notice), "application/json"),
        }
    }
}

/// `sha256=<hex>` of the body under `key`.
pub fn signature(key: &Secret, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.expose().as_bytes());
    format!(
        "sha256={}",
        hex::encode(aws_lc_rs::hmac::sign(&key, body).as_ref())
    )
}

fn cloud_event(notice: &Notice) -> Value {
    use sha2::Digest as _;
    let id = hex::encode(sha2::Sha256::digest(
        format!("{}|{}|{}", notice.digest, notice.decided_at, notice.outcome).as_bytes(),
    ));
    json!({
        "specversion": "1.0",
        "type": format!("dev.gantry.canary.{}", notice.outcome.replace('-', "_")),
        "source": notice.run_url.clone().unwrap_or_else(|| "urn:gantry:canary-watch".to_owned()),
        "id": &id[..32],
        "time": notice.decided_at,
        "subject": format!("{}@{}", notice.image, notice.digest),
        "datacontenttype": "application/json",
        "data": notice,
    })
}

/// Slack's escaping of `&`, `<` and `>` (its mrkdwn control characters).
fn slack_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn facts(notice: &Notice) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Environment", notice.environment.clone()),
        ("Image", notice.image.clone()),
        ("Canary", notice.digest.clone()),
        ("Previous", notice.previous_digest.clone()),
        ("Decided at", notice.decided_at.clone()),
    ];
    if let Some(url) = &notice.run_url {
        facts.push(("Run", url.clone()));
    }
    facts
}

fn slack(notice: &Notice) -> Value {
    let headline = slack_text(&notice.headline);
    let fields: Vec<Value> = facts(notice)
        .into_iter()
        .map(|(title, value)| {
            json!({"type": "mrkdwn", "text": format!("*{title}*\n{}", slack_text(&value))})
        })
        .collect();
    json!({
        "text": headline,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": format!("canary-watch: {}", notice.outcome)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_text(&notice.reason)}},
            {"type": "section", "fields": fields},
        ]
    })
}

fn teams(notice: &Notice) -> Value {
    let facts: Vec<Value> = facts(notice)
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
                     "text": format!("canary-watch: {}", notice.outcome)},
                    {"type": "TextBlock", "wrap": true, "text": notice.headline},
                    {"type": "TextBlock", "wrap": true, "isSubtle": true, "text": notice.reason},
                    {"type": "FactSet", "facts": facts},
                ]
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let key = Secret::new("Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        assert_eq!(
            slack_text("<!channel> & <https://evil|x>"),
            "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;"
        );
    }
}
