#![no_main]
//! Fuzz target: see `cio_credential::fuzzing::restic_key_file`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cio_credential::fuzzing::restic_key_file(data));
