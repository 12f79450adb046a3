#![no_main]
//! Fuzz target: see `cio_credential::fuzzing::sqlite_row`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cio_credential::fuzzing::sqlite_row(data));
