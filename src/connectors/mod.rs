//! Built-in connectors that need code: Google Calendar, Spotify and
//! Goodreads. (Providers that are only data live in the TOML
//! [`Catalogue`](crate::connector::Catalogue).)
//!
//! Each maps the provider's payloads into normalised records
//! ([`Event`](crate::records::Event), [`Artist`](crate::records::Artist),
//! [`Play`](crate::records::Play), [`Book`](crate::records::Book)) so a
//! host's matching code never reads raw provider JSON.

mod csv;
pub mod goodreads;
pub mod google;
pub mod spotify;
