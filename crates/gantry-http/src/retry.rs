//! One retry policy for every HTTP request gantry makes (registries, GitHub, Sigstore services):
//! what is retried, and how long to wait.
//!
//! A request is sent again only when repeating it cannot do anything twice, or when the server
//! said it did not act on it: a connection that never opened, a rate limit, or (for requests that
//! are safe to replay) a gateway error, a 500 or a broken connection. Waits follow what the server
//! asks (`Retry-After`, GitHub's `x-ratelimit-reset`), else jittered exponential back-off from
//! backon's `ExponentialBuilder`; a server that asks for more than [`Policy::max_wait`] is not
//! waited for. The loops that use it (gantry-oci's engine, gantry-github's `send`) also answer auth
//! challenges, which is not a retry and is not counted here.

use std::time::{Duration, SystemTime};

use backon::BackoffBuilder as _;
use http::{HeaderMap, StatusCode};

/// Whether sending a request twice is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads, and writes that land on the same result however often they arrive (a manifest PUT
    /// by digest or tag, an upload session that is abandoned).
    Safe,
    /// A write that would act twice (a second GitHub deployment is a second record).
    Unsafe,
}

/// How a request failed, as the policy needs to see it.
#[derive(Debug, Clone, Copy)]
pub enum Failure<'a> {
    /// The server answered with a status that is not a success.
    Status {
        /// The answer's status.
        status: StatusCode,
        /// The answer's headers (`Retry-After`, rate-limit headers).
        headers: &'a HeaderMap,
        /// The body, where the caller read it (GitHub's secondary rate limits say so only there).
        body: Option<&'a str>,
    },
    /// No connection could be opened: the request never reached the server.
    Connect,
    /// The request was sent, but the answer did not arrive (timeout, reset connection).
    Interrupted,
}

impl Failure<'_> {
    /// Classifies a reqwest error.
    pub fn of(error: &reqwest::Error) -> Self {
        if error.is_connect() {
            Failure::Connect
        } else {
            Failure::Interrupted
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then send the request again.
    Retry(Duration),
    /// Do not retry: hand the failure to the caller.
    Stop,
    /// The server asked for a wait longer than the policy allows.
    TooLong(Duration),
}

/// Retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Tries of one request, the first included.
    pub max_attempts: u32,
    /// The first back-off delay, doubled on every retry (plus up to as much again in jitter).
    pub first_delay: Duration,
    /// The longest back-off delay.
    pub max_delay: Duration,
    /// The longest wait a server may ask for (`Retry-After`, a rate-limit reset).
    pub max_wait: Duration,
    /// How long to wait on a rate limit that says nothing of when it ends (GitHub's secondary
    /// limits ask for at least a minute); `None`: the back-off delay.
    pub unsignalled_rate_limit: Option<Duration>,
}

impl Default for Policy {
    /// Registries: four tries, 200 ms doubling to 30 s, waits of up to a minute.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_wait: Duration::from_mins(1),
            unsignalled_rate_limit: None,
        }
    }
}

impl Policy {
    /// GitHub's REST API: three tries, waits of up to two minutes, a minute at least on a
    /// secondary rate limit, doubling.
    pub fn github() -> Self {
        Self {
            max_attempts: 3,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_wait: Duration::from_mins(2),
            unsignalled_rate_limit: Some(Duration::from_mins(1)),
        }
    }

    /// The attempts of one request.
    pub fn attempts(&self) -> Attempts {
        Attempts {
            policy: *self,
            attempt: 1,
            backoff: backon::ExponentialBuilder::new()
                .with_min_delay(self.first_delay)
                .with_max_delay(self.max_delay)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times()
                .build(),
        }
    }
}

/// The attempts of one request: which one this is, and the back-off schedule.
#[derive(Debug)]
pub struct Attempts {
    policy: Policy,
    attempt: u32,
    backoff: backon::ExponentialBackoff,
}

impl Attempts {
    /// The attempt being made, from 1.
    pub fn number(&self) -> u32 {
        self.attempt
    }

    /// Decides what follows `failure` of the current attempt; on `Retry`, the next attempt is
    /// counted.
    pub fn after(&mut self, replay: Replay, failure: Failure<'_>) -> Decision {
        let decision = match transient(replay, failure) {
            None => Decision::Stop,
            Some(Wait::Told(wait)) => {
                if wait > self.policy.max_wait {
                    return Decision::TooLong(wait);
                }
                Decision::Retry(wait)
            }
            Some(Wait::RateLimited) => match self.policy.unsignalled_rate_limit {
                Some(minimum) => Decision::Retry(minimum * 2u32.pow(self.attempt - 1)),
                None => Decision::Retry(self.next_delay()),
            },
            Some(Wait::Backoff) => Decision::Retry(self.next_delay()),
        };
        if self.attempt >= self.policy.max_attempts {
            return Decision::Stop;
        }
        if let Decision::Retry(wait) = decision
            && wait > self.policy.max_wait
        {
            return Decision::TooLong(wait);
        }
        if matches!(decision, Decision::Retry(_)) {
            self.attempt += 1;
        }
        decision
    }

    fn next_delay(&mut self) -> Duration {
        self.backoff.next().unwrap_or(self.policy.max_delay)
    }
}

enum Wait {
    /// The server said how long.
    Told(Duration),
    /// A rate limit that does not say when it ends.
    RateLimited,
    Backoff,
}

/// Whether `failure` is worth another attempt, and how the wait is chosen.
fn transient(replay: Replay, failure: Failure<'_>) -> Option<Wait> {
    let (status, headers, body) = match failure {
        Failure::Connect => return Some(Wait::Backoff),
        Failure::Interrupted => return (replay == Replay::Safe).then_some(Wait::Backoff),
        Failure::Status {
            status,
            headers,
            body,
        } => (status, headers, body),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let retry_after = header("retry-after").and_then(parse_retry_after);
    match status.as_u16() {
        429 | 403 => {
            if let Some(wait) = retry_after {
                return Some(Wait::Told(wait));
            }
            if header("x-ratelimit-remaining").map(str::trim) == Some("0") {
                let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok());
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let wait = reset.map_or(60, |reset| reset.saturating_sub(now)).max(1);
                return Some(Wait::Told(Duration::from_secs(wait)));
            }
            // A 403 is a refusal, unless its message says it is a (secondary) rate limit.
            let says_rate_limit =
                body.is_some_and(|b| b.to_ascii_lowercase().contains("rate limit"));
            (status == StatusCode::TOO_MANY_REQUESTS || says_rate_limit)
                .then_some(Wait::RateLimited)
        }
        503 if retry_after.is_some() => retry_after.map(Wait::Told),
        500 | 502..=504 => (replay == Replay::Safe).then_some(Wait::Backoff),
        _ => None,
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    /// What is retried, for safe and unsafe requests: the whole policy in one table.
    #[test]
    fn which_failures_are_retried() {
        let none = HeaderMap::new();
        let retry_after = headers(&[("retry-after", "7")]);
        let exhausted = headers(&[("x-ratelimit-remaining", "0")]);
        let status = |code: u16, headers, body| Failure::Status {
            status: StatusCode::from_u16(code).expect("status"),
            headers,
            body,
        };
        // (failure, retried when safe, retried when unsafe)
        let table: Vec<(&str, Failure<'_>, bool, bool)> = vec![
            ("connection refused", Failure::Connect, true, true),
            ("timeout or reset", Failure::Interrupted, true, false),
            ("429", status(429, &none, None), true, true),
            (
                "429 retry-after",
                status(429, &retry_after, None),
                true,
                true,
            ),
            (
                "403 refusal",
                status(403, &none, Some("Resource not accessible")),
                false,
                false,
            ),
            (
                "403 secondary limit",
                status(403, &none, Some("You have exceeded a secondary rate limit")),
                true,
                true,
            ),
            (
                "403 primary limit",
                status(403, &exhausted, None),
                true,
                true,
            ),
            (
                "403 retry-after",
                status(403, &retry_after, None),
                true,
                true,
            ),
            ("500", status(500, &none, None), true, false),
            ("502", status(502, &none, None), true, false),
            ("503", status(503, &none, None), true, false),
            (
                "503 retry-after",
                status(503, &retry_after, None),
                true,
                true,
            ),
            ("504", status(504, &none, None), true, false),
            ("501", status(501, &none, None), false, false),
            ("400", status(400, &none, None), false, false),
            ("401", status(401, &none, None), false, false),
            ("404", status(404, &none, None), false, false),
            ("409", status(409, &none, None), false, false),
            ("422", status(422, &none, None), false, false),
        ];
        for (name, failure, safe, unsafe_) in table {
            for (replay, expected) in [(Replay::Safe, safe), (Replay::Unsafe, unsafe_)] {
                let decision = Policy::default().attempts().after(replay, failure);
                assert_eq!(
                    matches!(decision, Decision::Retry(_)),
                    expected,
                    "{name} ({replay:?}): {decision:?}"
                );
            }
        }
    }

    #[test]
    fn waits_follow_the_server_then_back_off_and_stop() {
        let retry_after = headers(&[("retry-after", "7")]);
        let told = Failure::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers: &retry_after,
            body: None,
        };
        let mut attempts = Policy::default().attempts();
        assert_eq!(
            attempts.after(Replay::Safe, told),
            Decision::Retry(Duration::from_secs(7))
        );
        let long = headers(&[("retry-after", "3600")]);
        let too_long = Failure::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers: &long,
            body: None,
        };
        assert_eq!(
            Policy::default().attempts().after(Replay::Safe, too_long),
            Decision::TooLong(Duration::from_hours(1))
        );

        let policy = Policy {
            first_delay: Duration::from_millis(100),
            ..Policy::default()
        };
        let mut attempts = policy.attempts();
        let mut waits = Vec::new();
        while let Decision::Retry(wait) = attempts.after(Replay::Safe, Failure::Connect) {
            waits.push(wait);
        }
        assert_eq!(waits.len(), 3, "four attempts in all: {waits:?}");
        for (i, wait) in waits.iter().enumerate() {
            let base = Duration::from_millis(100) * 2u32.pow(u32::try_from(i).expect("small"));
            assert!(
                *wait >= base && *wait <= base * 2,
                "retry {i}: {wait:?} is not within [{base:?}, 2×]"
            );
        }
        assert_eq!(attempts.number(), 4);

        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let reset = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &(now + 30).to_string()),
        ]);
        let limited = Failure::Status {
            status: StatusCode::FORBIDDEN,
            headers: &reset,
            body: None,
        };
        let Decision::Retry(wait) = Policy::github().attempts().after(Replay::Unsafe, limited)
        else {
            panic!("a primary rate limit is waited out");
        };
        assert!((29..=30).contains(&wait.as_secs()), "{wait:?}");
        let none = HeaderMap::new();
        let secondary = Failure::Status {
            status: StatusCode::FORBIDDEN,
            headers: &none,
            body: Some("secondary rate limit"),
        };
        let mut attempts = Policy::github().attempts();
        assert_eq!(
            attempts.after(Replay::Unsafe, secondary),
            Decision::Retry(Duration::from_mins(1))
        );
        assert_eq!(
            attempts.after(Replay::Unsafe, secondary),
            Decision::Retry(Duration::from_mins(2))
        );
        assert_eq!(
            attempts.after(Replay::Unsafe, secondary),
            Decision::Stop,
            "three attempts for GitHub"
        );
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let later = SystemTime::now() + Duration::from_mins(2);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).expect("date");
        assert!(
            parsed <= Duration::from_mins(2) && parsed >= Duration::from_secs(115),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
