//! What staples are and where they live: identity, registry, zone, store.

pub mod certificate;
pub mod registry;
pub mod store;
pub mod wakeup;
pub mod zone;
