//! The HTTP check: one request to the canary per tick.
//!
//! | what happened                                   | verdict |
//! |-------------------------------------------------|---------|
//! | status in `expect-status`, body condition holds | pass    |
//! | status outside `expect-status`                  | fail    |
//! | body condition false                            | fail    |
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
    /// A regular expression the body must match.
    pub body: Option<Regex>,
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
        let response = match self.client.get(&self.url).send().await {
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
        let mut body = Vec::new();
        let mut response = response;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > BODY_LIMIT {
                        body.truncate(BODY_LIMIT);
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    return measured(classify(&error), gantry_http::explain(&error), expect);
                }
            }
        }
        let text = String::from_utf8_lossy(&body);
        let bound = format!("body matches /{}/", condition.as_str());
        if condition.is_match(&text) {
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
}
