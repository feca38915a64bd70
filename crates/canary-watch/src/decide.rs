//! The decision engine: tick verdicts in, a decision out.
//!
//! Each check of a tick yields pass, fail, inconclusive or error; the tick's verdict is the worst
//! of its deciding checks in the order **fail > error > inconclusive > pass** ([`Verdict::of`]).
//! Warm-up ticks are not given to the engine at all.
//!
//! Streaks, after each counted tick:
//!
//! | tick         | failure streak                         | error streak | inconclusive streak | success streak |
//! |--------------|----------------------------------------|--------------|---------------------|----------------|
//! | pass         | reset to 0                             | reset        | reset               | +1             |
//! | fail         | +1                                     | reset        | reset               | reset          |
//! | error        | kept (reset with `strict`)             | +1           | reset               | reset          |
//! | inconclusive | kept (reset with `strict`)             | reset        | +1                  | reset          |
//!
//! Decisions, checked after each tick in this order (the first that holds wins):
//!
//! | condition                                              | decision                         | exit |
//! |--------------------------------------------------------|----------------------------------|------|
//! | failure streak reaches `consecutive_failures`          | [`Decision::RollBack`]           | 1    |
//! | total failures reach `max_total_failures` (if set)     | [`Decision::RollBack`]           | 1    |
//! | error streak reaches `consecutive_errors`              | [`Decision::Hold`] or roll back (`on_error`) | 2 / 1 |
//! | inconclusive streak reaches `consecutive_inconclusive` | [`Decision::Inconclusive`]       | 1    |
//! | success streak reaches `consecutive_successes` (if set)| [`Decision::Healthy`] (early)    | 0    |
//!
//! When the window ends without a decision ([`Engine::finish`]): healthy only if at least one tick
//! passed and the failure streak is 0 (the last decisive tick passed); otherwise inconclusive —
//! nothing not proven counts as healthy.
//!
//! Errors never extend a failure streak: a runner whose own network fails (its control probe fails
//! in the same tick) sees errors, not failures, and so never rolls back a healthy canary.

use serde::Serialize;

/// What one check, or one tick, found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The canary is fine.
    Pass,
    /// The canary is not fine.
    Fail,
    /// Nothing to judge by (no data, NaN).
    Inconclusive,
    /// The check could not be made (the runner's side, the control probe, the metrics backend).
    Error,
}

impl Verdict {
    /// The tick's verdict from its checks' verdicts: fail if any failed, else error, else
    /// inconclusive, else pass. A tick without checks is an error (nothing was measured).
    pub fn of(checks: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut worst: Option<Verdict> = None;
        for check in checks {
            worst = Some(match (worst, check) {
                (Some(Verdict::Fail), _) | (_, Verdict::Fail) => Verdict::Fail,
                (Some(Verdict::Error), _) | (_, Verdict::Error) => Verdict::Error,
                (Some(Verdict::Inconclusive), _) | (_, Verdict::Inconclusive) => {
                    Verdict::Inconclusive
                }
                _ => Verdict::Pass,
            });
        }
        worst.unwrap_or(Verdict::Error)
    }
}

/// What to do when errors pile up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Leave the canary as it is, stop, exit 2, tell everyone.
    Hold,
    /// Roll back.
    Rollback,
}

/// The limits a watch decides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Failing ticks in a row that roll back (default 3).
    pub consecutive_failures: u32,
    /// Failing ticks in all that roll back.
    pub max_total_failures: Option<u32>,
    /// Error ticks in a row that end the watch per `on_error` (default 5).
    pub consecutive_errors: u32,
    /// What too many errors do (default hold).
    pub on_error: OnError,
    /// Inconclusive ticks in a row that end the watch as inconclusive (default 10).
    pub consecutive_inconclusive: u32,
    /// Passing ticks in a row that end the watch healthy early.
    pub consecutive_successes: Option<u32>,
    /// Error and inconclusive ticks break a failure streak too.
    pub strict: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            max_total_failures: None,
            consecutive_errors: 5,
            on_error: OnError::Hold,
            consecutive_inconclusive: 10,
            consecutive_successes: None,
            strict: false,
        }
    }
}

/// Why the watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// Healthy (exit 0).
    Healthy {
        /// Ended early on a success streak.
        early: bool,
    },
    /// Roll back (exit 1).
    RollBack {
        /// What decided it.
        cause: Cause,
    },
    /// Errors piled up and `on_error` is hold: the canary is left as is (exit 2).
    Hold,
    /// Nothing to judge by (exit 1, no rollback).
    Inconclusive,
    /// Someone else moved the watched tag: the watch stops, nothing is rolled back (exit 1).
    /// Never the engine's decision: the watch's guard sees it.
    Superseded,
}

/// What decided a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// `consecutive_failures` failing ticks in a row.
    ConsecutiveFailures,
    /// `max_total_failures` failing ticks in all.
    TotalFailures,
    /// `consecutive_errors` error ticks in a row, with `on_error: rollback`.
    Errors,
}

impl Decision {
    /// The exit code: 0 healthy, 1 rolled back or inconclusive, 2 held.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Healthy { .. } => 0,
            Self::RollBack { .. } | Self::Inconclusive | Self::Superseded => 1,
            Self::Hold => 2,
        }
    }
}

/// The streaks and counts after the ticks seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Streaks {
    /// Failing ticks in a row (errors and inconclusive ticks between them kept unless strict).
    pub failures: u32,
    /// Error ticks in a row.
    pub errors: u32,
    /// Inconclusive ticks in a row.
    pub inconclusive: u32,
    /// Passing ticks in a row.
    pub successes: u32,
    /// Failing ticks in all.
    pub total_failures: u32,
    /// Passing ticks in all.
    pub total_passes: u32,
    /// Ticks counted.
    pub ticks: u32,
}

/// The engine: feed it each counted tick's verdict; it answers once a decision holds.
#[derive(Debug, Clone)]
pub struct Engine {
    limits: Limits,
    streaks: Streaks,
    decided: Option<Decision>,
}

impl Engine {
    /// An engine deciding by `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            streaks: Streaks::default(),
            decided: None,
        }
    }

    /// The streaks so far (every decision names them).
    pub fn streaks(&self) -> Streaks {
        self.streaks
    }

    /// The decision, once there is one.
    pub fn decided(&self) -> Option<Decision> {
        self.decided
    }

    /// Counts one tick; the decision if this tick made one. After a decision, further ticks
    /// change nothing.
    pub fn observe(&mut self, verdict: Verdict) -> Option<Decision> {
        if self.decided.is_some() {
            return None;
        }
        let s = &mut self.streaks;
        s.ticks += 1;
        match verdict {
            Verdict::Pass => {
                s.failures = 0;
                s.errors = 0;
                s.inconclusive = 0;
                s.successes += 1;
                s.total_passes += 1;
            }
            Verdict::Fail => {
                s.failures += 1;
                s.total_failures += 1;
                s.errors = 0;
                s.inconclusive = 0;
                s.successes = 0;
            }
            Verdict::Error => {
                s.errors += 1;
                s.inconclusive = 0;
                s.successes = 0;
                if self.limits.strict {
                    s.failures = 0;
                }
            }
            Verdict::Inconclusive => {
                s.inconclusive += 1;
                s.errors = 0;
                s.successes = 0;
                if self.limits.strict {
                    s.failures = 0;
                }
            }
        }
        let limits = self.limits;
        let decision = if s.failures >= limits.consecutive_failures {
            Some(Decision::RollBack {
                cause: Cause::ConsecutiveFailures,
            })
        } else if limits
            .max_total_failures
            .is_some_and(|max| s.total_failures >= max)
        {
            Some(Decision::RollBack {
                cause: Cause::TotalFailures,
            })
        } else if s.errors >= limits.consecutive_errors {
            Some(match limits.on_error {
                OnError::Hold => Decision::Hold,
                OnError::Rollback => Decision::RollBack {
                    cause: Cause::Errors,
                },
            })
        } else if s.inconclusive >= limits.consecutive_inconclusive {
            Some(Decision::Inconclusive)
        } else if limits
            .consecutive_successes
            .is_some_and(|n| s.successes >= n)
        {
            Some(Decision::Healthy { early: true })
        } else {
            None
        };
        self.decided = decision;
        decision
    }

    /// The decision when the window ends: the one already made, else healthy if a tick passed and
    /// the last decisive tick passed, else inconclusive.
    pub fn finish(&self) -> Decision {
        self.decided.unwrap_or(
            if self.streaks.total_passes > 0 && self.streaks.failures == 0 {
                Decision::Healthy { early: false }
            } else {
                Decision::Inconclusive
            },
        )
    }
}

#[cfg(test)]
mod tests;
