//! Fuzzes `diskq::validate_line` with arbitrary bytes.
//!
//! It must never panic. A line it accepts must come back as one JSON
//! object that serde_json reads, with no raw `\n` or `\r` and no raw
//! U+2028 or U+2029, and with the same value as the input. A line that
//! serde_json reads as one object must be accepted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MAX_LEN: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let result = diskq::validate_line(data, MAX_LEN);
    let input = serde_json::from_slice::<Value>(data);
    match result {
        Ok(line) => {
            assert!(!line.contains(&b'\n'), "accepted line holds \\n: {line:?}");
            assert!(!line.contains(&b'\r'), "accepted line holds \\r: {line:?}");
            let text = std::str::from_utf8(&line).expect("an accepted line is UTF-8");
            assert!(
                !text.contains('\u{2028}') && !text.contains('\u{2029}'),
                "accepted line holds a raw separator: {text:?}"
            );
            let value: Value = serde_json::from_str(text).unwrap_or_else(|e| {
                panic!("serde_json cannot read an accepted line: {e}: {text:?}")
            });
            assert!(value.is_object(), "accepted a non-object: {text:?}");
            let input = input.expect("serde_json reads the input of an accepted line");
            assert_eq!(value, input, "the value changed: {text:?}");
        }
        Err(e) => {
            if let Ok(value) = input {
                assert!(
                    !(value.is_object() && data.len() <= MAX_LEN),
                    "rejected an object that serde_json reads: {e}: {:?}",
                    String::from_utf8_lossy(data)
                );
            }
        }
    }
});
