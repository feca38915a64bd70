//! The watch loop: fixed-rate ticks (start to start, never overlapping), warm-up ticks not
//! counted, each tick's checks run together and bounded by the probe timeout, the verdicts fed to
//! the [`Engine`], every measurement recorded.
//!
//! A tick that overruns its interval (it cannot: every check is bounded by the timeout, which is
//! shorter than the interval) would make the next start late rather than overlap it
//! (`MissedTickBehavior::Delay`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::decide::{Decision, Engine, Limits, Streaks, Verdict};

/// What one check measured in one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// The check's name.
    pub check: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// What was measured (`HTTP 503`, `0.042`, `connection refused`), for people.
    pub value: String,
    /// The bound it was held to (`2xx`, `≤ 0.01`).
    pub bound: String,
}

/// A check run once per tick.
pub trait Check: Send + Sync {
    /// Its name in the record.
    fn name(&self) -> &str;
    /// Runs it once; the watch bounds it by the probe timeout.
    fn run(&self) -> Pin<Box<dyn Future<Output = Measurement> + Send + '_>>;
}

/// Looked at once per tick beside the checks: `Some(why)` stops the watch as
/// [`Decision::Superseded`] (someone else moved the watched tag).
pub trait Guard: Send + Sync {
    /// `Some(what happened)` when the watch must stop.
    fn moved(&self) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>>;

    /// Told of every tick once it is recorded (a log line per tick).
    fn seen(&self, _tick: &Tick) {}
}

/// When ticks happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// From the start of one tick to the start of the next.
    pub interval: Duration,
    /// The longest one check may take (shorter than the interval).
    pub timeout: Duration,
    /// Ticks at the start that are measured and recorded but not counted.
    pub warm_up: u32,
    /// Counted ticks at most (the watch window).
    pub ticks: u32,
}

impl Schedule {
    /// Checks that ticks can never overlap.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval.is_zero() || self.timeout.is_zero() {
            return Err("interval and timeout must be longer than zero".to_owned());
        }
        if self.timeout >= self.interval {
            return Err(format!(
                "the probe timeout ({} ms) must be shorter than the interval ({} ms), so that ticks never overlap",
                self.timeout.as_millis(),
                self.interval.as_millis()
            ));
        }
        Ok(())
    }
}

/// One tick, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tick {
    /// Its number, from 1 (warm-up ticks included).
    pub number: u32,
    /// When it started, from the start of the watch.
    pub at: Duration,
    /// Whether it was counted (not warm-up).
    pub counted: bool,
    /// Its verdict.
    pub verdict: Verdict,
    /// Each check's measurement.
    pub measurements: Vec<Measurement>,
    /// The control probe's, when there is one.
    pub control: Option<Measurement>,
    /// The streaks after it.
    pub streaks: Streaks,
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Watched {
    /// The decision.
    pub decision: Decision,
    /// When it was made, from the start of the watch.
    pub decided_at: Duration,
    /// Every tick.
    pub ticks: Vec<Tick>,
    /// What the guard saw, when it stopped the watch.
    pub superseded: Option<String>,
}

/// Runs the watch to its decision. With a `control` probe (a known-good URL checked in every
/// tick), a tick whose control probe does not pass turns the checks' failures into errors.
pub async fn watch(
    checks: &[Box<dyn Check>],
    control: Option<&dyn Check>,
    limits: Limits,
    schedule: Schedule,
) -> Watched {
    watch_guarded(checks, control, None, limits, schedule).await
}

/// [`watch`], with a `guard` looked at in every tick (counted or not) beside the checks.
pub async fn watch_guarded(
    checks: &[Box<dyn Check>],
    control: Option<&dyn Check>,
    guard: Option<&dyn Guard>,
    limits: Limits,
    schedule: Schedule,
) -> Watched {
    let start = Instant::now();
    let mut engine = Engine::new(limits);
    let mut ticker = tokio::time::interval(schedule.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ticks = Vec::new();
    let mut counted = 0;
    let mut number = 0;
    while counted < schedule.ticks {
        ticker.tick().await;
        number += 1;
        let at = start.elapsed();
        let (mut measurements, control, moved) = futures_util::future::join3(
            futures_util::future::join_all(checks.iter().map(|c| bounded(c.as_ref(), schedule))),
            async {
                match control {
                    Some(probe) => Some(bounded(probe, schedule).await),
                    None => None,
                }
            },
            async {
                match guard {
                    // A guard that cannot answer within the timeout says nothing this tick.
                    Some(guard) => tokio::time::timeout(schedule.timeout, guard.moved())
                        .await
                        .ok()
                        .flatten(),
                    None => None,
                }
            },
        )
        .await;
        if let Some(moved) = moved {
            return Watched {
                decision: Decision::Superseded,
                decided_at: start.elapsed(),
                ticks,
                superseded: Some(moved),
            };
        }
        if let Some(probe) = control.as_ref().filter(|p| p.verdict != Verdict::Pass) {
            for m in measurements
                .iter_mut()
                .filter(|m| m.verdict == Verdict::Fail)
            {
                m.verdict = Verdict::Error;
                m.value = format!(
                    "{} (not counted as a failure: the control probe {} failed too: {})",
                    m.value, probe.check, probe.value
                );
            }
        }
        let verdict = Verdict::of(measurements.iter().map(|m| m.verdict));
        let counts = number > schedule.warm_up;
        let decision = if counts {
            counted += 1;
            engine.observe(verdict)
        } else {
            None
        };
        let tick = Tick {
            number,
            at,
            counted: counts,
            verdict,
            measurements,
            control,
            streaks: engine.streaks(),
        };
        if let Some(guard) = guard {
            guard.seen(&tick);
        }
        ticks.push(tick);
        if let Some(decision) = decision {
            return Watched {
                decision,
                decided_at: start.elapsed(),
                ticks,
                superseded: None,
            };
        }
    }
    Watched {
        decision: engine.finish(),
        decided_at: start.elapsed(),
        ticks,
        superseded: None,
    }
}

/// A check bounded by the probe timeout: one that takes longer is an error of the check, named.
async fn bounded(check: &dyn Check, schedule: Schedule) -> Measurement {
    match tokio::time::timeout(schedule.timeout, check.run()).await {
        Ok(measurement) => measurement,
        Err(_) => Measurement {
            check: check.name().to_owned(),
            verdict: Verdict::Error,
            value: format!("no answer within {} ms", schedule.timeout.as_millis()),
            bound: "the probe timeout".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::decide::Cause;

    /// A canary that answers pass until `fails_from`, then fail, taking `takes` each time.
    struct Scripted {
        fails_from: Duration,
        takes: Duration,
        start: Instant,
        runs: Arc<AtomicU32>,
    }

    impl Check for Scripted {
        fn name(&self) -> &'static str {
            "health"
        }
        fn run(&self) -> Pin<Box<dyn Future<Output = Measurement> + Send + '_>> {
            Box::pin(async move {
                self.runs.fetch_add(1, Ordering::Relaxed);
                let failing = self.start.elapsed() >= self.fails_from;
                tokio::time::sleep(self.takes).await;
                Measurement {
                    check: "health".into(),
                    verdict: if failing {
                        Verdict::Fail
                    } else {
                        Verdict::Pass
                    },
                    value: if failing { "HTTP 503" } else { "HTTP 200" }.into(),
                    bound: "2xx".into(),
                }
            })
        }
    }

    fn schedule() -> Schedule {
        Schedule {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            warm_up: 1,
            ticks: 60,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_decision_comes_within_n_intervals_and_a_timeout_of_the_outage() {
        // Outages starting anywhere in a tick: the third failing tick decides, at most
        // 3 intervals + the probe's time after the outage began.
        for offset_ms in [0u64, 1, 2_500, 9_999, 10_000, 37_123] {
            let start = Instant::now();
            let outage = Duration::from_secs(30) + Duration::from_millis(offset_ms);
            let runs = Arc::new(AtomicU32::new(0));
            let checks: Vec<Box<dyn Check>> = vec![Box::new(Scripted {
                fails_from: outage,
                takes: Duration::from_millis(1_500),
                start,
                runs: runs.clone(),
            })];
            let watched = watch(&checks, None, Limits::default(), schedule()).await;
            assert_eq!(
                watched.decision,
                Decision::RollBack {
                    cause: Cause::ConsecutiveFailures
                }
            );
            let bound = outage + 3 * schedule().interval + schedule().timeout;
            assert!(
                watched.decided_at <= bound,
                "outage at {outage:?}, decided at {:?}, bound {bound:?}",
                watched.decided_at
            );
            // Ticks start on the interval, start to start, whatever the checks take.
            for (i, tick) in watched.ticks.iter().enumerate() {
                assert_eq!(
                    tick.at,
                    schedule().interval * u32::try_from(i).expect("small")
                );
            }
            assert!(!watched.ticks[0].counted, "the warm-up tick is not counted");
        }
    }

    /// A check that never answers.
    struct Hanging;

    impl Check for Hanging {
        fn name(&self) -> &'static str {
            "hanging"
        }
        fn run(&self) -> Pin<Box<dyn Future<Output = Measurement> + Send + '_>> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_is_an_error_at_the_timeout_and_errors_hold() {
        let checks: Vec<Box<dyn Check>> = vec![Box::new(Hanging)];
        let watched = watch(&checks, None, Limits::default(), schedule()).await;
        assert_eq!(watched.decision, Decision::Hold);
        assert_eq!(watched.ticks.len(), 6, "1 warm-up, then 5 errors");
        assert!(watched.ticks[1].measurements[0].value.contains("3000 ms"));
        assert_eq!(
            watched.decided_at,
            schedule().interval * 5 + schedule().timeout
        );
    }

    #[test]
    fn a_timeout_as_long_as_the_interval_is_refused() {
        let overlapping = Schedule {
            timeout: Duration::from_secs(10),
            ..schedule()
        };
        assert!(overlapping.validate().is_err());
        assert!(schedule().validate().is_ok());
    }
}
