//! `canary-watch`: watches a canary on a fixed-rate tick, decides on its own to roll it back to
//! the previous digest, and says why.
//!
//! Work in progress (issue 15): this crate holds the decision engine so far ([`decide`]), the
//! part every other piece (checks, rollback, notifications) feeds or obeys. The one design
//! decision: the decision is a pure function of the sequence of tick verdicts and the limits, so
//! that it can be stated as a truth table, checked against a reference model over every sequence,
//! and replayed from the `--json` record of a watch.

#![warn(missing_docs)]

pub mod decide;
