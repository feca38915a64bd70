//! The HTTP check: one request to the canary per tick.
//!
//! | what happened                                   | verdict |
//! |-------------------------------------------------|---------|
//! | status in `expect-status`, body condition holds | pass    |
//! | status outside `expect-status`                  | fail    |
//! | body condition false (regex, or JSON path)      | fail    |
//! | JSON condition on a body that is not JSON       | fail    |
//! | timed out, connection refused or reset          | fail    |
//! | the canary's TLS failed                         | fail    |
//! | the name did not resolve, or the request could not be built | error (the runner's side) |
//!
//! With a control probe (a known-good URL), a tick whose control probe does not pass turns the
//! canary's failures into errors: the runner's network failing looks exactly like a dead canary.

use std::future::Future;
use std::pin::Pin;

use regex::Regex;

use crate::decide::Verdict;
use crate::watch::{Check, Measurement};

/// The statuses that pass: ranges such as `200-299` or single codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statuses(Vec<(u16, u16)>);

impl Default for Statuses {
    /// 2xx.
    fn default() -> Self {
        Self(vec![(200, 299)])
    }
}

impl std::str::FromStr for Statuses {
    type Err = String;
    /// `2xx`, `200-204`, `200,301`, or a mix: `2xx,301`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a status list (such as 2xx, 200-204, 200,301)");
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let range = if let Some(class) = part.strip_suffix("xx") {
                let class: u16 = class.parse().map_err(|_| bad())?;
                (class * 100, class * 100 + 99)
            } else if let Some((low, high)) = part.split_once('-') {
                (
                    low.trim().parse().map_err(|_| bad())?,
                    high.trim().parse().map_err(|_| bad())?,
                )
            } else {
                let code: u16 = part.parse().map_err(|_| bad())?;
                (code, code)
            };
            if !(100..=599).contains(&range.0)
                || !(100..=599).contains(&range.1)
                || range.0 > range.1
            {
                return Err(bad());
            }
            ranges.push(range);
        }
        Ok(Self(ranges))
    }
}

impl Statuses {
    /// Whether `status` passes.
    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

impl std::fmt::Display for Statuses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(low, high)| match (low, high) {
                (l, h) if l == h => l.to_string(),
                (l, h) if l % 100 == 0 && *h == l + 99 => format!("{}xx", l / 100),
                (l, h) => format!("{l}-{h}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A condition on a JSON body: a dotted path (`status`, `checks.db.status`, `items.0.state`; a
/// leading `$.` as in `JSONPath` is accepted) equal, or not equal, to a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonCondition {
    path: Vec<String>,
    equal: bool,
    value: serde_json::Value,
    text: String,
}

impl std::str::FromStr for JsonCondition {
    type Err = String;
    /// `PATH==VALUE` or `PATH!=VALUE`; VALUE is JSON (`"ok"`, `true`, `3`) or else a bare string.
    fn from_str(text: &str) -> Result<Self, String> {
        let (path, equal, value) = if let Some((p, v)) = text.split_once("!=") {
            (p, false, v)
        } else if let Some((p, v)) = text.split_once("==") {
            (p, true, v)
        } else {
            return Err(format!(
                "{text:?} is not a JSON condition (PATH==VALUE or PATH!=VALUE, such as status==ok)"
            ));
        };
        let path = path.trim();
        let path = path.strip_prefix("$.").unwrap_or(path);
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("{text:?}: the path {path:?} has an empty segment"));
        }
        let value = value.trim();
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        Ok(Self {
            path: segments,
            equal,
            value,
            text: text.trim().to_owned(),
        })
    }
}

impl std::fmt::Display for JsonCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonCondition {
    /// The verdict and what was found.
    pub(crate) fn judge(&self, body: &[u8]) -> (Verdict, String) {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
            return (Verdict::Fail, "the body is not JSON".to_owned());
        };
        let mut at = &json;
        for segment in &self.path {
            let next = match at {
                serde_json::Value::Object(map) => map.get(segment),
                serde_json::Value::Array(items) => {
                    segment.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            };
            let Some(next) = next else {
                return (
                    Verdict::Fail,
                    format!("{} is missing from the body", self.path.join(".")),
                );
            };
            at = next;
        }
        let shown: String = at.to_string().chars().take(120).collect();
        let holds = (*at == self.value) == self.equal;
        (
            if holds { Verdict::Pass } else { Verdict::Fail },
            format!("{} is {shown}", self.path.join(".")),
        )
    }
}

/// What the body must say.
#[derive(Debug, Clone)]
pub enum BodyCondition {
    /// A regular expression the body matches.
    Regex(Regex),
    /// A JSON value at a path.
    Json(JsonCondition),
}

/// The most of a body the check reads (a health endpoint answers in a few bytes).
const BODY_LIMIT: usize = 64 * 1024;

/// One URL, its passing statuses and an optional body condition.
pub struct HttpCheck {
    /// Its name in the record.
    pub name: String,
    /// The URL.
    pub url: String,
    /// Passing statuses.
    pub expect: Statuses,
    /// What the body must say.
    pub body: Option<BodyCondition>,
    /// Headers sent (values marked sensitive: never logged).
    pub headers: reqwest::header::HeaderMap,
    /// The client (gantry-http: roots, timeout).
    pub client: reqwest::Client,
}

impl HttpCheck {
    async fn measure(&self) -> Measurement {
        let measured = |verdict, value: String, bound: String| Measurement {
            check: self.name.clone(),
            verdict,
            value,
            bound,
        };
        let expect = self.expect.to_string();
        let request = self.client.get(&self.url).headers(self.headers.clone());
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let verdict = classify(&error);
                return measured(verdict, gantry_http::explain(&error), expect);
            }
        };
        let status = response.status().as_u16();
        if !self.expect.contains(status) {
            return measured(Verdict::Fail, format!("HTTP {status}"), expect);
        }
        let Some(condition) = &self.body else {
            return measured(Verdict::Pass, format!("HTTP {status}"), expect);
        };
        let body = match read_bounded(response).await {
            Ok(body) => body,
            Err(error) => {
                return measured(classify(&error), gantry_http::explain(&error), expect);
            }
        };
        match condition {
            BodyCondition::Regex(regex) => {
                let text = String::from_utf8_lossy(&body);
                let bound = format!("body matches /{}/", regex.as_str());
                if regex.is_match(&text) {
                    measured(Verdict::Pass, format!("HTTP {status}, body matches"), bound)
                } else {
                    let shown: String = text.chars().take(120).collect();
                    measured(
                        Verdict::Fail,
                        format!("HTTP {status}, body {shown:?} does not match"),
                        bound,
                    )
                }
            }
            BodyCondition::Json(json) => {
                let (verdict, found) = json.judge(&body);
                measured(verdict, format!("HTTP {status}, {found}"), json.to_string())
            }
        }
    }
}

/// A body, at most [`BODY_LIMIT`] bytes of it.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > BODY_LIMIT {
            body.truncate(BODY_LIMIT);
            break;
        }
    }
    Ok(body)
}

/// A failed request: the canary's fault (fail) or the runner's (error).
fn classify(error: &reqwest::Error) -> Verdict {
    let explained = gantry_http::explain(error);
    if error.is_builder() || explained.contains("does not resolve") {
        Verdict::Error
    } else {
        // Timeouts, refused and reset connections, TLS failures of the canary.
        Verdict::Fail
    }
}

impl Check for HttpCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = Measurement> + Send + '_>> {
        Box::pin(self.measure())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_parse_and_print() {
        let list: Statuses = "2xx,301,500-503".parse().expect("parses");
        assert!(list.contains(204) && list.contains(301) && list.contains(502));
        assert!(!list.contains(404) && !list.contains(504));
        assert_eq!(list.to_string(), "2xx,301,500-503");
        for bad in ["", "2x", "600", "503-500", "abc", "0xx"] {
            assert!(bad.parse::<Statuses>().is_err(), "{bad}");
        }
        assert_eq!(Statuses::default().to_string(), "2xx");
    }

    #[test]
    fn json_conditions_judge_a_path() {
        let body = br#"{"status":"ok","checks":{"db":{"up":true}},"items":[{"v":2}]}"#;
        let judge = |text: &str| text.parse::<JsonCondition>().expect(text).judge(body);
        assert_eq!(judge("status==ok").0, Verdict::Pass);
        assert_eq!(judge("$.status==\"ok\"").0, Verdict::Pass);
        assert_eq!(judge("status!=ok").0, Verdict::Fail);
        assert_eq!(judge("checks.db.up==true").0, Verdict::Pass);
        assert_eq!(judge("checks.db.up==false").0, Verdict::Fail);
        assert_eq!(judge("items.0.v==2").0, Verdict::Pass);
        assert_eq!(
            judge("items.1.v==2"),
            (
                Verdict::Fail,
                "items.1.v is missing from the body".to_owned()
            )
        );
        assert_eq!(
            judge("status==degraded"),
            (Verdict::Fail, "status is \"ok\"".to_owned())
        );
        let not_json = "status==ok"
            .parse::<JsonCondition>()
            .expect("parses")
            .judge(b"<html>");
        assert_eq!(not_json.0, Verdict::Fail);
        for bad in ["status", "a..b==1", "==1"] {
            assert!(bad.parse::<JsonCondition>().is_err(), "{bad}");
        }
    }
}
