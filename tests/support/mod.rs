//! Shared helpers for integration tests. Include with `mod support;`.
//!
//! Each test crate uses a different part of this module, so unused items are
//! expected here.
#![allow(dead_code)]

pub(crate) mod http_server;
pub(crate) mod oidc;
#[cfg(feature = "testing")]
pub(crate) mod providers;
