//! Fuzz target: arbitrary bytes (as lossy UTF-8) through the parser, the
//! typed layer, the scopes and every expansion. Any panic is a bug; keep the
//! input in testdata/fuzz-regressions/.
#![no_main]

#[path = "../../parser/tests/common/exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    exercise::exercise(&String::from_utf8_lossy(data));
});
