//! The four registry modes start and answer `/v2/` the way real registries do.

mod github;
mod registry;
