//! shim as a library: the modules `main.rs` wires, public so that tests and the fuzzer can reach
//! the pure core (parse, plan, render) directly.

pub mod arena;
pub mod check;
pub mod cli;
pub mod dns;
pub mod fix;
pub mod log;
pub mod policy;
pub mod privileges;
pub mod proxy;
pub mod regular_file;
pub mod resolv_conf;
pub mod supervisor;
