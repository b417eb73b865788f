//! parse -> plan -> render on any bytes, checked against independent models of how glibc and
//! musl read resolv.conf (tests/model/mod.rs, shared with the proptest suite in
//! tests/invariants.rs): never panics; only whole 127.0.0.11 lines go, order kept, never longer;
//! a library that reads a nameserver keeps one; idempotent; no 127.0.0.11, no change.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model/mod.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    model::check(data);
});
