//! gantry-oci against real registries.

mod basics;
mod copy;
mod failures;
mod referrers;
mod skopeo;
mod support;
