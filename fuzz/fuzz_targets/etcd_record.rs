#![no_main]
//! Fuzz target: see `cio_credential::fuzzing::etcd_record`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cio_credential::fuzzing::etcd_record(data));
