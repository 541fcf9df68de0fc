//! Keyring parsing never panics, never echoes key material in its errors,
//! and whatever parses exports to a string that parses to the same ids.
#![no_main]

use consentry::secrecy::ExposeSecret;
use consentry::vault::Keyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Keyring::parse(text) {
        Ok(ring) => {
            let again = Keyring::parse(ring.export().expose_secret()).expect("export parses");
            assert!(ring.ids().eq(again.ids()));
        }
        Err(e) => {
            // An error message never contains a 43-character base64 key
            // taken from the input.
            let msg = e.to_string();
            for entry in text.split(',') {
                for part in entry.split(':') {
                    let part = part.trim();
                    if part.len() >= 40 {
                        assert!(!msg.contains(part), "error echoes input: {msg}");
                    }
                }
            }
        }
    }
});
