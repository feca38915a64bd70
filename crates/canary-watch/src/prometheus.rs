//! The Prometheus check: an instant query against a Prometheus-compatible API each tick.
//!
//! | what came back                                        | verdict                        |
//! |-------------------------------------------------------|--------------------------------|
//! | transport failure, non-200, `status: error`, bad JSON | error                          |
//! | no series                                             | `on-empty` (inconclusive)      |
//! | NaN                                                   | `on-nan` (inconclusive)        |
//! | several series without `reduce`                       | error (exactly one expected)   |
//! | the value (reduced) outside `min`/`max`               | fail                           |
//! | the value within them                                 | pass                           |
//!
//! `reduce`: `max`, `min`, `sum`, `avg` make one value of the series; `all` passes only if every
//! series is within the bounds, `any` if one is.

use std::future::Future;
use std::pin::Pin;

use gantry_secret::Secret;
use serde::Deserialize;

use crate::decide::Verdict;
use crate::watch::{Check, Measurement};

/// How several series become one verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Exactly one series, else an error (the default).
    One,
    /// The largest value.
    Max,
    /// The smallest value.
    Min,
    /// The sum.
    Sum,
    /// The mean.
    Avg,
    /// Every series within the bounds.
    All,
    /// At least one series within the bounds.
    Any,
}

impl std::str::FromStr for Reduce {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "one" => Self::One,
            "max" => Self::Max,
            "min" => Self::Min,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "all" => Self::All,
            "any" => Self::Any,
            other => {
                return Err(format!(
                    "{other:?} is not a reduction (one, max, min, sum, avg, all, any)"
                ));
            }
        })
    }
}

/// How the query authenticates.
pub enum Auth {
    /// `Authorization: Bearer …`.
    Bearer(Secret),
    /// HTTP basic.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
}

/// One `PromQL` query and its bounds.
pub struct PrometheusCheck {
    /// Its name in the record.
    pub name: String,
    /// The API base (`http://prometheus:9090`).
    pub url: String,
    /// The query.
    pub query: String,
    /// How several series become one verdict.
    pub reduce: Reduce,
    /// The least passing value.
    pub min: Option<f64>,
    /// The most passing value.
    pub max: Option<f64>,
    /// The verdict of an empty result (default inconclusive).
    pub on_empty: Verdict,
    /// The verdict of NaN (default inconclusive).
    pub on_nan: Verdict,
    /// Credentials.
    pub auth: Option<Auth>,
    /// The client (gantry-http).
    pub client: reqwest::Client,
}

/// The most of an answer read.
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

impl PrometheusCheck {
    fn bound(&self) -> String {
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!("{min} ≤ value ≤ {max}"),
            (Some(min), None) => format!("value ≥ {min}"),
            (None, Some(max)) => format!("value ≤ {max}"),
            (None, None) => "any value".to_owned(),
        }
    }

    fn within(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    async fn measure(&self) -> Measurement {
        let bound = self.bound();
        let measured = |verdict, value: String| Measurement {
            check: self.name.clone(),
            verdict,
            value,
            bound: bound.clone(),
        };
        let values = match self.values().await {
            Ok(values) => values,
            Err(why) => return measured(Verdict::Error, why),
        };
        if values.is_empty() {
            return measured(self.on_empty, "no series".to_owned());
        }
        let reduced = match self.reduce {
            Reduce::One if values.len() != 1 => {
                return measured(
                    Verdict::Error,
                    format!(
                        "{} series, exactly one expected (set reduce: max, min, sum, avg, all or any)",
                        values.len()
                    ),
                );
            }
            Reduce::One => values[0],
            Reduce::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Reduce::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
            Reduce::Sum => values.iter().sum(),
            Reduce::Avg => {
                values.iter().sum::<f64>()
                    / f64::from(u32::try_from(values.len()).unwrap_or(u32::MAX))
            }
            Reduce::All | Reduce::Any => {
                let inside = values
                    .iter()
                    .filter(|v| !v.is_nan() && self.within(**v))
                    .count();
                let nan = values.iter().filter(|v| v.is_nan()).count();
                if nan == values.len() {
                    return measured(self.on_nan, "NaN".to_owned());
                }
                let pass = if self.reduce == Reduce::All {
                    inside == values.len()
                } else {
                    inside > 0
                };
                let shown: Vec<String> = values.iter().map(ToString::to_string).collect();
                return measured(
                    if pass { Verdict::Pass } else { Verdict::Fail },
                    format!(
                        "{inside} of {} series within ({})",
                        values.len(),
                        shown.join(", ")
                    ),
                );
            }
        };
        if reduced.is_nan() {
            return measured(self.on_nan, "NaN".to_owned());
        }
        let verdict = if self.within(reduced) {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        measured(verdict, reduced.to_string())
    }

    /// The query's values, or why there are none (every reason an error).
    async fn values(&self) -> Result<Vec<f64>, String> {
        let url = format!("{}/api/v1/query", self.url.trim_end_matches('/'));
        let mut request = self
            .client
            .get(&url)
            .query(&[("query", self.query.as_str())]);
        request = match &self.auth {
            Some(Auth::Bearer(token)) => request.bearer_auth(token.expose()),
            Some(Auth::Basic { user, password }) => {
                request.basic_auth(user, Some(password.expose()))
            }
            None => request,
        };
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("querying {url}: {}", gantry_http::explain(&e)))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading {url}: {}", gantry_http::explain(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > ANSWER_LIMIT {
                return Err(format!("{url} answered more than {ANSWER_LIMIT} bytes"));
            }
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            format!("{url} answered HTTP {status} with a body that is not a query result: {e}")
        })?;
        if answer.status != "success" || !status.is_success() {
            return Err(format!(
                "{url} answered HTTP {status}, status {}: {}",
                answer.status,
                answer.error.unwrap_or_default()
            ));
        }
        let data = answer.data.ok_or("a query result without data")?;
        let number = |sample: &serde_json::Value| -> Result<f64, String> {
            let text = sample
                .get(1)
                .and_then(serde_json::Value::as_str)
                .ok_or("a sample without a value")?;
            match text {
                "NaN" => Ok(f64::NAN),
                "+Inf" => Ok(f64::INFINITY),
                "-Inf" => Ok(f64::NEG_INFINITY),
                other => other
                    .parse()
                    .map_err(|_| format!("{other:?} is not a number")),
            }
        };
        match data.result_type.as_str() {
            "vector" => data
                .result
                .as_array()
                .ok_or("a vector that is not a list")?
                .iter()
                .map(|series| number(&series["value"]))
                .collect(),
            "scalar" => Ok(vec![number(&data.result)?]),
            other => Err(format!(
                "the query gives a {other}, an instant vector or scalar is needed"
            )),
        }
    }
}

impl Check for PrometheusCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self) -> Pin<Box<dyn Future<Output = Measurement> + Send + '_>> {
        Box::pin(self.measure())
    }
}
