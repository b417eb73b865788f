//! resolv.conf: read it the way glibc and musl do, decide what to change, render the result,
//! and write it back in place. `parse`, `plan` and `render` are pure; `file` is the only edge.

#![forbid(unsafe_code)]

mod file;
mod parse;
mod plan;

pub use file::{fix, read, FixError, Fixed};
pub use parse::{parse, Kind, Line, Nameserver, ResolvConf, EMBEDDED, MUSL_MAX_LINE};
pub use plan::{plan, render, Outcome, Plan, Policy};
