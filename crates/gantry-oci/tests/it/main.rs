//! gantry-oci against real registries.

mod basics;
mod copy;
mod referrers;
mod support;
