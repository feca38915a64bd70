//! `canary-watch`: watches a canary on a fixed-rate tick, decides on its own to roll it back to
//! the previous digest, and says why.
//!
//! Work in progress (issue 15): this crate holds the decision engine ([`decide`]) and the watch
//! loop that feeds it ([`watch`]: fixed-rate ticks, warm-up, checks bounded by the probe timeout,
//! every measurement recorded, a control probe that turns a tick's failures into errors) and the
//! HTTP and Prometheus checks ([`http`], [`prometheus`]) and the rollback of a registry tag
//! ([`rollback`]); the tool around them, Deployments and notifications come next. The one design
//! decision: the decision is a pure function of the sequence of tick verdicts and the limits, so
//! that it can be stated as a truth table, checked against a reference model over every sequence,
//! and replayed from the `--json` record of a watch.

#![warn(missing_docs)]

pub mod decide;
pub mod http;
pub mod prometheus;
pub mod rollback;
pub mod watch;
