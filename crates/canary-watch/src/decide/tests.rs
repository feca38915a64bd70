//! The engine against its truth table, and against a reference model written from the table's
//! definitions (suffixes and counts of the whole sequence), over every sequence of verdicts up to
//! length 12 and random ones beyond.

use proptest::prelude::*;

use super::*;

use Verdict::{Error as E, Fail as F, Inconclusive as I, Pass as P};

fn run(limits: Limits, ticks: &[Verdict]) -> Decision {
    let mut engine = Engine::new(limits);
    for &tick in ticks {
        engine.observe(tick);
    }
    engine.finish()
}

#[test]
fn the_tick_verdict_is_the_worst_of_its_checks() {
    assert_eq!(Verdict::of([P, I, E, F]), F);
    assert_eq!(Verdict::of([P, I, E]), E);
    assert_eq!(Verdict::of([I, P]), I);
    assert_eq!(Verdict::of([P, P]), P);
    assert_eq!(Verdict::of([]), E, "nothing measured is not a pass");
}

#[test]
fn the_truth_table() {
    let d = Limits::default();
    let rollback = Decision::RollBack {
        cause: Cause::ConsecutiveFailures,
    };
    // Three failures in a row roll back; errors and inconclusive ticks between them do not
    // break the streak (the runner's network failing is not the canary passing).
    assert_eq!(run(d, &[P, F, F, F]), rollback);
    assert_eq!(run(d, &[F, E, F, I, F]), rollback);
    // A pass breaks it.
    assert_eq!(
        run(d, &[F, F, P, F, F, P]),
        Decision::Healthy { early: false }
    );
    // Strict: an error breaks it too.
    let strict = Limits { strict: true, ..d };
    assert_eq!(
        run(strict, &[F, E, F, F, P]),
        Decision::Healthy { early: false }
    );
    assert_eq!(run(strict, &[F, E, F, F, F]), rollback);
    // Total failures.
    let total = Limits {
        max_total_failures: Some(3),
        ..d
    };
    assert_eq!(
        run(total, &[F, P, F, P, F]),
        Decision::RollBack {
            cause: Cause::TotalFailures
        }
    );
    // Five errors in a row hold (exit 2), or roll back when told to.
    assert_eq!(run(d, &[P, E, E, E, E, E]), Decision::Hold);
    assert_eq!(Decision::Hold.exit_code(), 2);
    let roll = Limits {
        on_error: OnError::Rollback,
        ..d
    };
    assert_eq!(
        run(roll, &[E, E, E, E, E]),
        Decision::RollBack {
            cause: Cause::Errors
        }
    );
    // Too many inconclusive ticks: inconclusive, no rollback.
    assert_eq!(run(d, &[I; 10]), Decision::Inconclusive);
    // Early health.
    let early = Limits {
        consecutive_successes: Some(2),
        ..d
    };
    assert_eq!(
        run(early, &[F, P, P, F, F, F]),
        Decision::Healthy { early: true }
    );
    // The window ends: healthy only when something passed and the failure streak is 0.
    assert_eq!(run(d, &[]), Decision::Inconclusive);
    assert_eq!(run(d, &[E, E, I]), Decision::Inconclusive);
    assert_eq!(
        run(d, &[P, F]),
        Decision::Inconclusive,
        "an open failure streak"
    );
    assert_eq!(run(d, &[P, E]), Decision::Healthy { early: false });
    // Nothing after a decision changes it.
    let mut engine = Engine::new(d);
    for tick in [F, F, F, P, P, P] {
        engine.observe(tick);
    }
    assert_eq!(engine.finish(), rollback);
    assert_eq!(
        engine.streaks().ticks,
        3,
        "the deciding tick is the last counted"
    );
}

/// The failure streak, read off the sequence: the failures after the last pass (strict: the
/// failing ticks at its end).
fn failure_streak(limits: Limits, seen: &[Verdict]) -> usize {
    if limits.strict {
        seen.iter().rev().take_while(|&&t| t == F).count()
    } else {
        let after_pass = seen.iter().rposition(|&t| t == P).map_or(0, |i| i + 1);
        seen[after_pass..].iter().filter(|&&t| t == F).count()
    }
}

/// The reference model: each rule of the table, read off the whole sequence.
fn reference(limits: Limits, ticks: &[Verdict]) -> Decision {
    let at = |n: u32| usize::try_from(n).expect("small");
    for end in 1..=ticks.len() {
        let seen = &ticks[..end];
        let trailing = |v: Verdict| seen.iter().rev().take_while(|&&t| t == v).count();
        let total = seen.iter().filter(|&&t| t == F).count();
        if failure_streak(limits, seen) >= at(limits.consecutive_failures) {
            return Decision::RollBack {
                cause: Cause::ConsecutiveFailures,
            };
        }
        if limits.max_total_failures.is_some_and(|m| total >= at(m)) {
            return Decision::RollBack {
                cause: Cause::TotalFailures,
            };
        }
        if trailing(E) >= at(limits.consecutive_errors) {
            return match limits.on_error {
                OnError::Hold => Decision::Hold,
                OnError::Rollback => Decision::RollBack {
                    cause: Cause::Errors,
                },
            };
        }
        if trailing(I) >= at(limits.consecutive_inconclusive) {
            return Decision::Inconclusive;
        }
        if limits
            .consecutive_successes
            .is_some_and(|n| trailing(P) >= at(n))
        {
            return Decision::Healthy { early: true };
        }
    }
    if ticks.contains(&P) && failure_streak(limits, ticks) == 0 {
        Decision::Healthy { early: false }
    } else {
        Decision::Inconclusive
    }
}

/// Every sequence up to `depth`, the engine fed incrementally, compared with the reference at
/// every length; the number of sequences checked.
fn exhaustive(limits: Limits, depth: usize) -> usize {
    fn walk(limits: Limits, engine: &Engine, ticks: &mut Vec<Verdict>, depth: usize) -> usize {
        assert_eq!(
            engine.finish(),
            reference(limits, ticks),
            "{limits:?} over {ticks:?}"
        );
        if ticks.len() == depth {
            return 1;
        }
        let mut count = 1;
        for verdict in [P, F, E, I] {
            let mut next = engine.clone();
            next.observe(verdict);
            ticks.push(verdict);
            count += walk(limits, &next, ticks, depth);
            ticks.pop();
        }
        count
    }
    walk(limits, &Engine::new(limits), &mut Vec::new(), depth)
}

#[test]
fn the_engine_agrees_with_the_reference_on_every_sequence_up_to_12() {
    let checked = exhaustive(Limits::default(), 12);
    assert_eq!(checked, (0..=12).map(|k| 4usize.pow(k)).sum::<usize>());
}

#[test]
fn and_with_other_limits_on_every_sequence_up_to_8() {
    for limits in [
        Limits {
            strict: true,
            ..Limits::default()
        },
        Limits {
            consecutive_failures: 2,
            max_total_failures: Some(3),
            consecutive_errors: 2,
            on_error: OnError::Rollback,
            consecutive_inconclusive: 3,
            consecutive_successes: Some(2),
            strict: false,
        },
        Limits {
            consecutive_failures: 1,
            consecutive_errors: 1,
            consecutive_inconclusive: 1,
            consecutive_successes: Some(1),
            strict: true,
            ..Limits::default()
        },
    ] {
        exhaustive(limits, 8);
    }
}

fn verdicts() -> impl Strategy<Value = Vec<Verdict>> {
    proptest::collection::vec(prop_oneof![Just(P), Just(F), Just(E), Just(I)], 0..60)
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        1u32..6,
        proptest::option::of(1u32..10),
        1u32..8,
        any::<bool>(),
        1u32..12,
        proptest::option::of(1u32..6),
        any::<bool>(),
    )
        .prop_map(
            |(failures, total, errors, rollback, inconclusive, successes, strict)| Limits {
                consecutive_failures: failures,
                max_total_failures: total,
                consecutive_errors: errors,
                on_error: if rollback {
                    OnError::Rollback
                } else {
                    OnError::Hold
                },
                consecutive_inconclusive: inconclusive,
                consecutive_successes: successes,
                strict,
            },
        )
}

proptest! {
    #[test]
    fn long_sequences_and_any_limits_agree_with_the_reference(limits in limits(), ticks in verdicts()) {
        prop_assert_eq!(run(limits, &ticks), reference(limits, &ticks));
    }
}
