#![no_main]
//! Fuzz target: see `cio_credential::fuzzing::repo_url`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cio_credential::fuzzing::repo_url(data));
