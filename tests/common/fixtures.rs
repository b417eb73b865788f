//! resolv.conf texts several test files start from.

/// Docker <= 25 on a user-defined network, on a host with only IPv6 DNS: the embedded resolver
/// (which cannot reach the IPv6 server) first, the host's server after it.
pub const DOCKER25: &str =
    "search corp.example\nnameserver 127.0.0.11\nnameserver 2001:db8::53\noptions ndots:0\n";
/// [`DOCKER25`] as shim leaves it: the 127.0.0.11 line gone, every other line as it was.
pub const DOCKER25_FIXED: &str = "search corp.example\nnameserver 2001:db8::53\noptions ndots:0\n";

/// [`DOCKER25`] without its search line.
pub const DOCKER25_NO_SEARCH: &str =
    "nameserver 127.0.0.11\nnameserver 2001:db8::53\noptions ndots:0\n";

/// The shortest file shim fixes: the embedded resolver, then an IPv6 server.
pub const EMBEDDED_THEN_V6: &str = "nameserver 127.0.0.11\nnameserver 2001:db8::53\n";
/// [`EMBEDDED_THEN_V6`] as shim leaves it.
pub const V6_ONLY: &str = "nameserver 2001:db8::53\n";
