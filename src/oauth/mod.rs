//! OAuth 2.0 protocol pieces (placeholder during development).

pub(crate) mod error;

pub use error::{CallbackError, MAX_DESCRIPTION_CHARS, MAX_ERROR_CODE_CHARS, OAuthErrorCode};
