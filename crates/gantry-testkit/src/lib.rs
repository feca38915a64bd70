//! Real components for gantry's tests, started on loopback and stopped on drop.
//!
//! Tests run against the real thing (CNCF distribution from Debian's `docker-registry`, skopeo,
//! umoci, …), never a mock of it. When a component is missing on a developer's machine the test says
//! so loudly on stderr and returns early; with `CI=true` a missing component fails the test, so CI
//! can never go green by skipping.

pub mod component;
pub mod github;
pub mod peers;
pub mod pki;
pub mod proxy;
pub mod registry;
mod server;
pub mod token;

pub use component::{in_ci, require, shout};
pub use github::GitHubFake;
pub use pki::TestCa;
pub use proxy::{Fault, FaultyProxy};
pub use registry::{Auth, Backend, Registry, TEST_HOST_NAME};
