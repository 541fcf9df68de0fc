//! Envelope parsing never panics, and whatever parses reports consistent
//! lengths and a well-formed key id.
#![no_main]

use consentry::vault::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::parse(data) {
        assert_eq!(env.version(), Envelope::VERSION);
        let id = env.key_id();
        assert!(!id.is_empty() && id.len() <= 64);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)));
        assert!(env.plaintext_len() + 2 + id.len() + 24 + 32 + 16 == data.len());
    }
});
