//! The DNS wire format as a stub resolver speaks it: the query glibc and musl send, and what the
//! bytes that come back mean for it (H6).
//!
//! Pure: bytes in, a meaning out, no socket and no clock, so every case (spoofed ids, cut
//! messages, CNAME chains in every order) is tested on crafted messages. hickory-proto builds the
//! query and reads the header, question and names; the answer records are read here by hand,
//! because hickory's full `Message` decoder costs the static binary 225 KB (DESIGN.md, section 8).

#![forbid(unsafe_code)]

use std::net::IpAddr;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, DecodeError,
};

/// The port every stub resolver asks.
pub const PORT: u16 = 53;

/// The largest DNS message (TCP); a UDP answer without EDNS is at most 512 bytes.
pub const MAX_MESSAGE: usize = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    A,
    Aaaa,
}

impl Family {
    pub fn record_type(self) -> RecordType {
        match self {
            Family::A => RecordType::A,
            Family::Aaaa => RecordType::AAAA,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Family::A => "A",
            Family::Aaaa => "AAAA",
        }
    }
}

/// How one query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// NOERROR with at least one record of the asked type.
    Ok,
    /// NOERROR without a record of the asked type (the name exists, this family does not).
    NoData,
    NxDomain,
    ServFail,
    Refused,
    /// No answer before the deadline.
    Timeout,
    /// Anything else: another RCODE, a socket error (ICMP unreachable...).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NoData => "nodata",
            Status::NxDomain => "nxdomain",
            Status::ServFail => "servfail",
            Status::Refused => "refused",
            Status::Timeout => "timeout",
            Status::Error => "error",
        }
    }

    /// An answer a stub resolver takes as final (NOERROR or NXDOMAIN): glibc and musl stop
    /// there and never ask another server. SERVFAIL, REFUSED, silence and errors move them on.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Ok | Status::NoData | Status::NxDomain)
    }
}

/// A name as asked on the wire: ASCII (no IDNA), absolute.
pub fn parse_name(name: &str) -> Result<Name, String> {
    let absolute = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    // hickory's errors are not formatted: their Display pulls IDNA tables and base64 into the
    // static binary, a large share of its size for one line of text.
    Name::from_ascii(&absolute).map_err(|_| {
        format!("'{name}' is not a domain name (ASCII labels of at most 63 bytes, 253 in all)")
    })
}

/// A standard recursive query for `name`, with no EDNS (as glibc and musl send by default).
pub fn build_query(id: u16, name: &Name, family: Family) -> Result<Vec<u8>, String> {
    let mut metadata = Metadata::new(id, MessageType::Query, OpCode::Query);
    metadata.recursion_desired = true;
    let header = Header {
        metadata,
        counts: HeaderCounts {
            queries: 1,
            ..HeaderCounts::default()
        },
    };
    let mut packet = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut packet);
    header
        .emit(&mut encoder)
        .and_then(|()| Query::query(name.clone(), family.record_type()).emit(&mut encoder))
        .map_err(|_| "cannot encode the query".to_owned())?;
    Ok(packet)
}

/// What a received packet means for the query `id` for `name` and `family`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Not an answer to this query (another id, another question, not a response, garbage):
    /// keep waiting, as a stub resolver does.
    NotOurs,
    /// Our id, but not a message that can be read to its end: keep waiting too. A stub
    /// resolver drops what it cannot match to its query and waits for the next packet (musl
    /// for anything it cannot identify, glibc for a question it cannot match); a spoofed or
    /// mangled packet must not hide the good answer behind it.
    Malformed,
    /// TC set: ask again over TCP.
    Truncated,
    Final {
        status: Status,
        addresses: Vec<IpAddr>,
        detail: Option<String>,
    },
}

/// The parts of an answer a probe looks at. Records are read by hand instead of with
/// `Message`: its decoder formats every record type for a panic message it can never reach,
/// and that alone would bring IDNA tables and base64 into the static binary.
struct Decoded {
    metadata: Metadata,
    queries: Result<Vec<Query>, DecodeError>,
    answers: Result<Vec<AnswerRecord>, DecodeError>,
}

/// One record of the answer section, as far as a stub resolver reads it.
struct AnswerRecord {
    owner: Name,
    class: u16,
    data: RecordData,
}

enum RecordData {
    /// A CNAME, with its target.
    Alias(Name),
    /// Any other type, with its RDATA.
    Other(RecordType, Vec<u8>),
}

fn decode(packet: &[u8]) -> Result<Decoded, DecodeError> {
    let mut decoder = BinDecoder::new(packet);
    let header = Header::read(&mut decoder)?;
    let queries: Result<Vec<Query>, DecodeError> = (0..header.counts.queries)
        .map(|_| Query::read(&mut decoder))
        .collect();
    let answers = queries.as_ref().map_err(Clone::clone).and_then(|_| {
        (0..header.counts.answers)
            .map(|_| read_record(&mut decoder))
            .collect()
    });
    Ok(Decoded {
        metadata: header.metadata,
        queries,
        answers,
    })
}

fn read_record(decoder: &mut BinDecoder) -> Result<AnswerRecord, DecodeError> {
    let owner = Name::read(decoder)?;
    let kind = RecordType::from(decoder.read_u16()?.unverified());
    let class = decoder.read_u16()?.unverified();
    decoder.read_u32()?; // TTL
    let length = decoder.read_u16()?.unverified();
    let start = decoder.index();
    let rdata = decoder.read_slice(usize::from(length))?.unverified();
    let data = if kind == RecordType::CNAME {
        // The target may point back into the message (name compression): read it there.
        let start = u16::try_from(start).map_err(|_| DecodeError::InsufficientBytes)?;
        RecordData::Alias(Name::read(&mut decoder.clone(start))?)
    } else {
        RecordData::Other(kind, rdata.to_vec())
    };
    Ok(AnswerRecord { owner, class, data })
}

/// The class IN.
const CLASS_IN: u16 = 1;

pub fn classify(id: u16, name: &Name, family: Family, packet: &[u8]) -> Reply {
    let ours = packet.len() >= 2 && u16::from_be_bytes([packet[0], packet[1]]) == id;
    if !ours {
        return Reply::NotOurs;
    }
    let Ok(message) = decode(packet) else {
        return Reply::Malformed;
    };
    if message.metadata.message_type != MessageType::Response {
        return Reply::NotOurs;
    }
    let Ok(queries) = message.queries else {
        // A truncated answer may be cut anywhere: TCP will tell.
        return if message.metadata.truncation {
            Reply::Truncated
        } else {
            Reply::Malformed
        };
    };
    let rcode = message.metadata.response_code;
    let question_matches = queries
        .iter()
        .any(|q| q.name() == name && q.query_type() == family.record_type());
    // Servers may leave the question out of an error answer (FORMERR, REFUSED, NOTIMP); an
    // answer with data must repeat our question.
    let question_ok = question_matches || (queries.is_empty() && rcode != ResponseCode::NoError);
    if !question_ok {
        return Reply::NotOurs;
    }
    if message.metadata.truncation {
        return Reply::Truncated;
    }
    let Ok(answers) = message.answers else {
        return Reply::Malformed;
    };
    let (status, detail) = match rcode {
        ResponseCode::NoError => (Status::Ok, None),
        ResponseCode::NXDomain => (Status::NxDomain, None),
        ResponseCode::ServFail => (Status::ServFail, None),
        ResponseCode::Refused => (Status::Refused, None),
        other => (
            Status::Error,
            Some(format!("answer code {}", other.to_str())),
        ),
    };
    let addresses = addresses_on_chain(name, family, &answers);
    let status = match status {
        Status::Ok if addresses.is_empty() => Status::NoData,
        status => status,
    };
    Reply::Final {
        status,
        addresses,
        detail,
    }
}

/// The addresses glibc takes from an answer section (getanswer_r in nss_dns): it reads the
/// records once, in order, looking for the question's name; a CNAME moves the name looked for
/// to its target (whatever the CNAME's owner, "based on historic precedent"), and only an
/// address owned by the name looked for at that point counts, so an address for another name,
/// or one placed before the CNAME that leads to it, is skipped. Names compare without case.
/// musl does not look at owners: an answer glibc takes, musl takes too.
fn addresses_on_chain(question: &Name, family: Family, answers: &[AnswerRecord]) -> Vec<IpAddr> {
    let mut looked_for = question;
    let mut addresses = Vec::new();
    for record in answers.iter().filter(|r| r.class == CLASS_IN) {
        match &record.data {
            RecordData::Alias(target) => looked_for = target,
            RecordData::Other(kind, data)
                if *kind == family.record_type() && record.owner == *looked_for =>
            {
                // glibc skips an address of the wrong length.
                let address = match family {
                    Family::A => <[u8; 4]>::try_from(data.as_slice()).ok().map(IpAddr::from),
                    Family::Aaaa => <[u8; 16]>::try_from(data.as_slice()).ok().map(IpAddr::from),
                };
                addresses.extend(address);
            }
            RecordData::Other(..) => {}
        }
    }
    addresses
}

/// Crafted messages, for the tests of this layer and of the transport.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{RData, Record};

    pub fn name(text: &str) -> Name {
        parse_name(text).unwrap()
    }

    pub fn response(id: u16, question: &str, qtype: RecordType, rcode: ResponseCode) -> Message {
        let mut m = Message::response(id, OpCode::Query);
        m.metadata.response_code = rcode;
        m.add_query(Query::query(name(question), qtype));
        m
    }

    pub fn bytes(m: &Message) -> Vec<u8> {
        m.to_vec().unwrap()
    }

    pub fn aaaa(owner: &str, v6: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::AAAA(AAAA(v6.parse().unwrap())))
    }

    pub fn a(owner: &str, v4: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A(v4.parse().unwrap())))
    }

    pub fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::Record;

    fn final_(status: Status, addresses: Vec<IpAddr>) -> Reply {
        Reply::Final {
            status,
            addresses,
            detail: None,
        }
    }

    #[test]
    fn the_query_asks_one_recursive_question() {
        let packet = build_query(0x1234, &name("v6only.test"), Family::Aaaa).unwrap();
        let m = Message::from_vec(&packet).unwrap();
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.message_type, MessageType::Query);
        assert!(m.metadata.recursion_desired);
        assert!(m.edns.is_none());
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name(), &name("v6only.test."));
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
        // id, flags RD, 1 question, 0 answers: the header as glibc sends it.
        assert_eq!(&packet[..6], &[0x12, 0x34, 0x01, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn names_are_absolute_and_ascii() {
        assert!(name("example.com").is_fqdn());
        assert_eq!(name("example.com"), name("EXAMPLE.com."));
        assert!(parse_name("bad name").is_err());
    }

    #[test]
    fn addresses_of_the_asked_family_make_ok() {
        // A stray A record in an AAAA answer is not an AAAA address.
        let records = vec![
            aaaa("dual.test", "2001:db8::66"),
            a("dual.test", "192.0.2.1"),
        ];
        let reply = classified("dual.test", Family::Aaaa, records);
        assert_eq!(reply, ok(&["2001:db8::66"]));
    }

    #[test]
    fn a_cname_chain_is_followed_to_its_addresses() {
        let records = vec![cname("www.test", "web.test"), a("web.test", "192.0.2.8")];
        assert_eq!(
            classified("www.test", Family::A, records),
            ok(&["192.0.2.8"])
        );
    }

    #[test]
    fn noerror_without_records_is_nodata() {
        let m = response(9, "v4only.test", RecordType::AAAA, ResponseCode::NoError);
        let reply = classify(9, &name("v4only.test"), Family::Aaaa, &bytes(&m));
        assert_eq!(reply, final_(Status::NoData, vec![]));
    }

    #[test]
    fn response_codes_map_to_statuses() {
        for (rcode, status) in [
            (ResponseCode::NXDomain, Status::NxDomain),
            (ResponseCode::ServFail, Status::ServFail),
            (ResponseCode::Refused, Status::Refused),
        ] {
            let m = response(10, "x.test", RecordType::A, rcode);
            assert_eq!(
                classify(10, &name("x.test"), Family::A, &bytes(&m)),
                final_(status, vec![])
            );
        }
        let m = response(10, "x.test", RecordType::A, ResponseCode::FormErr);
        match classify(10, &name("x.test"), Family::A, &bytes(&m)) {
            Reply::Final {
                status: Status::Error,
                detail: Some(detail),
                ..
            } => assert!(detail.contains("Form"), "{detail}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_answers_may_leave_the_question_out() {
        let mut m = Message::response(11, OpCode::Query);
        m.metadata.response_code = ResponseCode::Refused;
        let reply = classify(11, &name("x.test"), Family::A, &bytes(&m));
        assert_eq!(reply, final_(Status::Refused, vec![]));
        // ... but a NOERROR answer without our question is not ours.
        let m = Message::response(11, OpCode::Query);
        assert_eq!(
            classify(11, &name("x.test"), Family::A, &bytes(&m)),
            Reply::NotOurs
        );
    }

    #[test]
    fn answers_to_other_queries_are_ignored() {
        let m = response(12, "x.test", RecordType::A, ResponseCode::NXDomain);
        let packet = bytes(&m);
        assert_eq!(
            classify(13, &name("x.test"), Family::A, &packet),
            Reply::NotOurs
        );
        assert_eq!(
            classify(12, &name("y.test"), Family::A, &packet),
            Reply::NotOurs
        );
        assert_eq!(
            classify(12, &name("x.test"), Family::Aaaa, &packet),
            Reply::NotOurs
        );
        // Our own query echoed back is not an answer.
        let query = build_query(12, &name("x.test"), Family::A).unwrap();
        assert_eq!(
            classify(12, &name("x.test"), Family::A, &query),
            Reply::NotOurs
        );
        assert_eq!(
            classify(12, &name("x.test"), Family::A, &[0]),
            Reply::NotOurs
        );
    }

    #[test]
    fn garbage_with_our_id_is_malformed() {
        let reply = classify(
            0x0102,
            &name("x.test"),
            Family::A,
            &[1, 2, 0x81, 0x80, 0, 1],
        );
        assert_eq!(reply, Reply::Malformed);
    }

    /// The NOERROR answer with `records` to the `family` question for `question`, classified.
    fn classified(question: &str, family: Family, records: Vec<Record>) -> Reply {
        let mut m = response(30, question, family.record_type(), ResponseCode::NoError);
        for record in records {
            m.add_answer(record);
        }
        classify(30, &name(question), family, &bytes(&m))
    }

    /// The AAAA answer for `question` with `records`, classified.
    fn chain(question: &str, records: Vec<Record>) -> Reply {
        classified(question, Family::Aaaa, records)
    }

    fn ok(addresses: &[&str]) -> Reply {
        let addresses = addresses.iter().map(|a| a.parse().unwrap()).collect();
        final_(Status::Ok, addresses)
    }

    #[test]
    fn an_address_of_another_name_is_not_an_answer() {
        let reply = chain("www.test", vec![aaaa("other.test", "2001:db8::1")]);
        assert_eq!(reply, final_(Status::NoData, vec![]));
    }

    /// Records written `owner TYPE data`, separated by `;`.
    fn records(text: &str) -> Vec<Record> {
        text.split(';')
            .map(
                |record| match record.split_whitespace().collect::<Vec<_>>()[..] {
                    [owner, "CNAME", target] => cname(owner, target),
                    [owner, "AAAA", address] => aaaa(owner, address),
                    _ => panic!("{record}"),
                },
            )
            .collect()
    }

    #[test]
    fn addresses_count_along_the_cname_chain_in_glibc_order() {
        // The AAAA answers for www.test, and the addresses glibc takes from each (none: NODATA).
        let nodata: &[&str] = &[];
        for (answer, addresses) in [
            // question -> CNAME -> AAAA, names compared without case.
            (
                "WWW.test CNAME web.test; web.TEST AAAA 2001:db8::8",
                &["2001:db8::8"][..],
            ),
            // A longer chain, in order.
            (
                "www.test CNAME a.test; a.test CNAME b.test; b.test AAAA 2001:db8::b",
                &["2001:db8::b"],
            ),
            // glibc reads the records once, in order: an address before the CNAME that leads
            // to its owner is skipped, and so is one of the question after the chain moved on.
            (
                "web.test AAAA 2001:db8::8; www.test CNAME web.test; www.test AAAA 2001:db8::1",
                nodata,
            ),
            (
                "a.test CNAME b.test; www.test CNAME a.test; b.test AAAA 2001:db8::b",
                nodata,
            ),
            // An address of the question before the CNAME still counts, as does its end's.
            (
                "www.test AAAA 2001:db8::1; www.test CNAME web.test; web.test AAAA 2001:db8::8",
                &["2001:db8::1", "2001:db8::8"],
            ),
            // glibc follows a CNAME whatever its owner ("historic precedent" in getanswer_r).
            (
                "elsewhere.test CNAME web.test; web.test AAAA 2001:db8::8",
                &["2001:db8::8"],
            ),
        ] {
            let expected = if addresses.is_empty() {
                final_(Status::NoData, vec![])
            } else {
                ok(addresses)
            };
            assert_eq!(chain("www.test", records(answer)), expected, "{answer}");
        }
    }

    #[test]
    fn a_malformed_answer_with_our_id_is_not_final() {
        let short = [1, 2, 0x81, 0x80, 0, 1];
        let mut m = response(0x0102, "dual.test", RecordType::AAAA, ResponseCode::NoError);
        m.add_answer(aaaa("dual.test", "2001:db8::66"));
        let good = bytes(&m);
        let cut = &good[..good.len() - 5];
        for packet in [&short[..], cut] {
            let reply = classify(0x0102, &name("dual.test"), Family::Aaaa, packet);
            assert!(!matches!(reply, Reply::Final { .. }), "{reply:?}");
            assert_eq!(reply, Reply::Malformed);
        }
    }

    /// The transport on loopback, with no namespace: a silent server, a closed port and a
    /// server that sends junk with the query's id before its answer, all in one timeout.
    #[test]
    fn truncated_answers_go_to_tcp() {
        let mut m = response(14, "big.test", RecordType::AAAA, ResponseCode::NoError);
        m.metadata.truncation = true;
        let reply = classify(14, &name("big.test"), Family::Aaaa, &bytes(&m));
        assert_eq!(reply, Reply::Truncated);
    }

    #[test]
    fn a_truncated_answer_cut_inside_its_question_still_goes_to_tcp() {
        let mut m = response(15, "big.test", RecordType::AAAA, ResponseCode::NoError);
        m.metadata.truncation = true;
        let packet = bytes(&m);
        let cut = &packet[..packet.len() - 3];
        assert_eq!(
            classify(15, &name("big.test"), Family::Aaaa, cut),
            Reply::Truncated
        );
    }

    #[test]
    fn a_cut_answer_section_is_malformed() {
        let mut m = response(16, "dual.test", RecordType::AAAA, ResponseCode::NoError);
        m.add_answer(aaaa("dual.test", "2001:db8::66"));
        let packet = bytes(&m);
        let reply = classify(
            16,
            &name("dual.test"),
            Family::Aaaa,
            &packet[..packet.len() - 5],
        );
        assert_eq!(reply, Reply::Malformed);
    }

    #[test]
    fn records_of_another_class_are_not_addresses() {
        let mut m = response(17, "dual.test", RecordType::A, ResponseCode::NoError);
        let mut record = a("dual.test", "192.0.2.1");
        record.dns_class = hickory_proto::rr::DNSClass::CH;
        m.add_answer(record);
        let reply = classify(17, &name("dual.test"), Family::A, &bytes(&m));
        assert_eq!(reply, final_(Status::NoData, vec![]));
    }

    #[test]
    fn only_noerror_and_nxdomain_are_final() {
        let finals: Vec<Status> = [
            Status::Ok,
            Status::NoData,
            Status::NxDomain,
            Status::ServFail,
            Status::Refused,
            Status::Timeout,
            Status::Error,
        ]
        .into_iter()
        .filter(|s| s.is_final())
        .collect();
        assert_eq!(finals, [Status::Ok, Status::NoData, Status::NxDomain]);
    }
}
