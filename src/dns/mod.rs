//! Asking nameservers directly, in the three layers hickory-dns keeps apart:
//! - [`wire`]: the query, and what the bytes that come back mean (pure);
//! - [`transport`]: every query at once on non-blocking sockets, one poll(2) loop, one deadline;
//! - [`probe`]: whom to ask for what, and what the answers mean for a person and for the log.
//!
//! Only `--probe`, `--embedded auto` and `--check-dns` come here: a plain start does no DNS
//! work.

pub mod probe;
pub mod transport;
pub mod wire;

pub use probe::{format_ms, probe, probe_and_log, query, Answer, ServerProbe};
pub use wire::{parse_name, Family, Status};
