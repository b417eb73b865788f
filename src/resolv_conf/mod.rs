//! resolv.conf: read it the way glibc and musl do, decide what to change, render the result,
//! and write it back in place. `parse`, `plan`, `servers` and `lints` are pure; `file` is the
//! only edge.

#![forbid(unsafe_code)]

mod file;
mod lints;
mod parse;
mod plan;
mod servers;

pub use file::{apply, fix, read, FixError, Fixed};
pub use lints::{ndots, pitfalls, shown};
pub use parse::{parse, Kind, Line, MuslSkip, Nameserver, ResolvConf, EMBEDDED, MUSL_MAX_LINE};
pub use plan::{plan, render, Outcome, Plan, Policy};
pub use servers::{servers, servers_in_use, Role, Server, FALLBACK, MAXNS};
