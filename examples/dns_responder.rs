//! The test DNS server as a program, for `bench/dns.sh`: run it inside a network namespace.
//!
//! Usage: dns_responder SPEC...   where SPEC is BEHAVIOUR@ADDRESS:PORT, BEHAVIOUR one of
//! `zone`, `silent`, `servfail`, `refused`, `truncate`, `names` (Docker's embedded resolver on an
//! IPv6-only host: container names only, everything else dropped), or `forward=ADDRESS:PORT`.
//! Example: dns_responder 'zone@[2001:db8::53]:53' 'silent@127.0.0.11:53'
//! Serves until killed. Prints `ready` on stdout once every socket is bound.

#[path = "../tests/dns/responder.rs"]
mod responder;

use std::net::{SocketAddr, TcpListener, UdpSocket};

use hickory_proto::op::ResponseCode;
use responder::{Behaviour, Responder};

fn main() {
    let specs: Vec<String> = std::env::args().skip(1).collect();
    if specs.is_empty() {
        eprintln!("usage: dns_responder BEHAVIOUR@ADDRESS:PORT...");
        std::process::exit(2);
    }
    let servers: Vec<Responder> = specs.iter().map(|spec| start(spec)).collect();
    println!("ready");
    loop {
        std::thread::park();
        let _ = &servers;
    }
}

fn start(spec: &str) -> Responder {
    let fail = |why: &str| -> ! {
        eprintln!("dns_responder: {spec}: {why}");
        std::process::exit(2);
    };
    let Some((behaviour, address)) = spec.split_once('@') else {
        fail("expected BEHAVIOUR@ADDRESS:PORT");
    };
    let address: SocketAddr = address.parse().unwrap_or_else(|_| fail("bad address"));
    let behaviour = match behaviour {
        "zone" => Behaviour::Zone,
        "silent" => Behaviour::Silent,
        "servfail" => Behaviour::Fail(ResponseCode::ServFail),
        "refused" => Behaviour::Fail(ResponseCode::Refused),
        "truncate" => Behaviour::TruncatingZone,
        "names" => Behaviour::Names,
        other => match other.strip_prefix("forward=") {
            Some(upstream) => {
                let upstream: SocketAddr =
                    upstream.parse().unwrap_or_else(|_| fail("bad upstream"));
                Behaviour::Forward(
                    responder::upstream_socket(upstream).unwrap_or_else(|e| fail(&e.to_string())),
                )
            }
            None => fail("unknown behaviour"),
        },
    };
    let udp = UdpSocket::bind(address).unwrap_or_else(|e| fail(&e.to_string()));
    let tcp = TcpListener::bind(address).unwrap_or_else(|e| fail(&e.to_string()));
    Responder::start(udp, Some(tcp), behaviour)
}
