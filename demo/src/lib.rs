//! Walkthroughs of consentry, as examples: `cargo run --example quickstart`
//! from the repository root. This package only exists so those examples
//! can use consentry's `testing` feature without flags; it has no API.
#![forbid(unsafe_code)]
