//! The wire format, as far as a forwarder reads it: the header and the question of a client's
//! query, whether a reply answers it and what it says, the id rewritten, a SERVFAIL. Everything
//! else of a message passes through as bytes (EDNS, records, CNAME chains), so the proxy never
//! changes what a name means. Only hickory's header and question readers are used: its full
//! `Message` decoder would add ~225 KB to the static binary. Bytes from the network reach every
//! function here: none may panic (proptests below).

use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Header, MessageType, Query, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};

use super::decide::Heard;

/// Length of the fixed DNS header.
const HEADER: usize = 12;

/// A client's query, as far as the proxy needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientQuery {
    pub id: u16,
    pub question: Query,
    /// Where the question ends: header and question are what a SERVFAIL repeats.
    pub question_end: usize,
}

/// A query the proxy forwards: not a response, exactly one question (what every stub resolver
/// sends; a reply can then be matched to it). `None` for anything else: it is dropped.
pub fn read_query(packet: &[u8]) -> Option<ClientQuery> {
    let mut decoder = BinDecoder::new(packet);
    let header = Header::read(&mut decoder).ok()?;
    if header.metadata.message_type != MessageType::Query || header.counts.queries != 1 {
        return None;
    }
    let question = Query::read(&mut decoder).ok()?;
    Some(ClientQuery {
        id: header.metadata.id,
        question,
        question_end: decoder.index(),
    })
}

/// What `packet` says about the query sent with `id` for `question`, or `None` when it is not
/// an answer to it (another id, not a response, another question, malformed): the wait goes on,
/// as a stub resolver's does, so a spoofed or mangled packet cannot hide the good answer.
pub fn read_reply(packet: &[u8], id: u16, question: &Query) -> Option<Heard> {
    let mut decoder = BinDecoder::new(packet);
    let header = Header::read(&mut decoder).ok()?;
    let metadata = &header.metadata;
    if metadata.id != id || metadata.message_type != MessageType::Response {
        return None;
    }
    let code = metadata.response_code;
    let failure = !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain);
    match header.counts.queries {
        // Servers may leave the question out of an error answer (FORMERR, REFUSED, NOTIMP):
        // it can only say this server has nothing for us.
        0 if failure => return Some(Heard::Failed),
        1 if Query::read(&mut decoder).ok()? == *question => {}
        _ => return None,
    }
    if metadata.truncation {
        // Cut short on purpose, possibly inside a record: the client asks again over TCP.
        return Some(match code {
            ResponseCode::NoError => Heard::Positive,
            ResponseCode::NXDomain => Heard::NxDomain,
            _ => Heard::Failed,
        });
    }
    let counts = &header.counts;
    let records = u32::from(counts.answers) + u32::from(counts.authorities);
    skip_records(&mut decoder, records + u32::from(counts.additionals)).ok()?;
    Some(match code {
        ResponseCode::NoError if counts.answers > 0 => Heard::Positive,
        ResponseCode::NoError => Heard::NoData,
        ResponseCode::NXDomain => Heard::NxDomain,
        _ => Heard::Failed,
    })
}

/// Walk `count` resource records, checking only that each is whole: a reply cut inside a record
/// would fail in the client's parser, which then gives up on the only server it has.
fn skip_records(decoder: &mut BinDecoder, count: u32) -> Result<(), DecodeError> {
    for _ in 0..count {
        skip_name(decoder)?;
        decoder.read_slice(8)?; // type, class, TTL
        let length = decoder.read_u16()?.unverified();
        decoder.read_slice(usize::from(length))?;
    }
    Ok(())
}

/// A name on the wire: labels up to a zero, or a compression pointer (which ends it). Where the
/// pointer points is the client's business: it reads the same bytes the server sent.
fn skip_name(decoder: &mut BinDecoder) -> Result<(), DecodeError> {
    loop {
        let length = decoder.pop()?.unverified();
        match length {
            0 => return Ok(()),
            1..=63 => {
                decoder.read_slice(usize::from(length))?;
            }
            0xC0..=0xFF => {
                decoder.pop()?;
                return Ok(());
            }
            _ => return Err(DecodeError::InsufficientBytes),
        }
    }
}

/// Replace the id of `packet`: the same bytes otherwise.
pub fn set_id(packet: &mut [u8], id: u16) {
    if let Some(bytes) = packet.get_mut(..2) {
        bytes.copy_from_slice(&id.to_be_bytes());
    }
}

/// The id of a message (0 for one shorter than that).
pub fn id_of(packet: &[u8]) -> u16 {
    packet
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// SERVFAIL for `query` (the client's bytes, read as `read`, the id perhaps replaced since):
/// the client's id, the query's opcode, RD and CD bits
/// and question, no record.
pub fn servfail(query: &[u8], read: &ClientQuery) -> Vec<u8> {
    let Some(asked) = query.get(..read.question_end) else {
        return Vec::new();
    };
    let mut answer = asked.to_vec();
    set_id(&mut answer, read.id);
    if let Some(header) = answer.get_mut(..HEADER) {
        // QR, the query's opcode and RD; AA and TC clear.
        header[2] = 0x80 | (header[2] & 0x79);
        // RA, CD kept, SERVFAIL.
        header[3] = 0x80 | (header[3] & 0x10) | 2;
        header[4..HEADER].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    }
    answer
}

/// A DNS message over TCP: its length first, in two bytes.
pub fn framed(message: &[u8]) -> Vec<u8> {
    // Every message here came in one UDP datagram or one TCP frame: it fits.
    let length = u16::try_from(message.len()).unwrap_or(u16::MAX);
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message.get(..usize::from(length)).unwrap_or(message));
    framed
}

/// The first whole length-prefixed message in `received`, taken out of it.
pub fn take_frame(received: &mut Vec<u8>) -> Option<Vec<u8>> {
    let prefix: [u8; 2] = received.get(..2)?.try_into().ok()?;
    let end = 2 + usize::from(u16::from_be_bytes(prefix));
    let message = received.get(2..end)?.to_vec();
    received.drain(..end);
    Some(message)
}

/// Query ids for the attempts. No random number generator (it can fail in an empty chroot):
/// the answer is taken only from the server's address and port on a connected socket, and a
/// fresh id per attempt keeps a late answer to an old attempt from being taken for a new one.
/// splitmix64, seeded from the clock and the pid.
pub struct Ids(u64);

impl Ids {
    pub fn new() -> Ids {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ids(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn fresh(&mut self) -> u16 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31)) as u16
    }
}

impl Default for Ids {
    fn default() -> Ids {
        Ids::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, OpCode};
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use proptest::prelude::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn query_message(id: u16, asked: &str, kind: RecordType) -> Message {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name(asked), kind));
        m
    }

    fn response(query: &Message, code: ResponseCode) -> Message {
        let mut m = Message::response(query.metadata.id, OpCode::Query);
        m.metadata.response_code = code;
        m.add_queries(query.queries.iter().cloned());
        m
    }

    #[test]
    fn a_client_query_is_read_with_its_question() {
        let q = query_message(0x1234, "db.", RecordType::AAAA);
        let bytes = q.to_vec().unwrap();
        let read = read_query(&bytes).unwrap();
        assert_eq!(read.id, 0x1234);
        assert_eq!(read.question, Query::query(name("db."), RecordType::AAAA));
        assert_eq!(read.question_end, bytes.len());
        // A response, no question or two are not queries to forward.
        let r = response(&q, ResponseCode::NoError).to_vec().unwrap();
        assert_eq!(read_query(&r), None);
        let mut two = q.clone();
        two.add_query(Query::query(name("x."), RecordType::A));
        assert_eq!(read_query(&two.to_vec().unwrap()), None);
        assert_eq!(read_query(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn replies_are_matched_by_id_question_and_qr() {
        let q = query_message(7, "v6only.test.", RecordType::AAAA);
        let question = q.queries[0].clone();
        let mut r = response(&q, ResponseCode::NoError);
        r.add_answer(Record::from_rdata(
            name("v6only.test."),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        let bytes = r.to_vec().unwrap();
        assert_eq!(read_reply(&bytes, 7, &question), Some(Heard::Positive));
        assert_eq!(read_reply(&bytes, 8, &question), None);
        // The name compares without case (a server may echo 0x20 case back).
        let upper = Query::query(name("V6ONLY.Test."), RecordType::AAAA);
        assert_eq!(read_reply(&bytes, 7, &upper), Some(Heard::Positive));
        let other_type = Query::query(name("v6only.test."), RecordType::A);
        assert_eq!(read_reply(&bytes, 7, &other_type), None);
        // The query itself (QR clear) is no answer, nor is a reply cut inside a record.
        assert_eq!(read_reply(&q.to_vec().unwrap(), 7, &question), None);
        assert_eq!(read_reply(&bytes[..bytes.len() - 3], 7, &question), None);
        assert_eq!(read_reply(&bytes[..6], 7, &question), None);
    }

    #[test]
    fn replies_say_what_they_say() {
        let q = query_message(9, "x.test.", RecordType::A);
        let question = q.queries[0].clone();
        let heard = |r: &Message| read_reply(&r.to_vec().unwrap(), 9, &question);
        for (rcode, expected) in [
            (ResponseCode::NoError, Heard::NoData),
            (ResponseCode::NXDomain, Heard::NxDomain),
            (ResponseCode::ServFail, Heard::Failed),
            (ResponseCode::Refused, Heard::Failed),
        ] {
            assert_eq!(heard(&response(&q, rcode)), Some(expected), "{rcode:?}");
        }
        // A REFUSED without the question still says this server has nothing.
        let mut bare = Message::response(9, OpCode::Query);
        bare.metadata.response_code = ResponseCode::Refused;
        assert_eq!(heard(&bare), Some(Heard::Failed));
        bare.metadata.response_code = ResponseCode::NXDomain;
        assert_eq!(heard(&bare), None);
        // Truncated: records may be cut; NOERROR counts as an answer for the client to fetch.
        let mut tc = response(&q, ResponseCode::NoError);
        tc.metadata.truncation = true;
        assert_eq!(heard(&tc), Some(Heard::Positive));
        // A CNAME alone is an answer record: the chain is the server's to give.
        let mut alias = response(&q, ResponseCode::NoError);
        alias.add_answer(Record::from_rdata(
            name("x.test."),
            60,
            RData::CNAME(CNAME(name("y.test."))),
        ));
        assert_eq!(heard(&alias), Some(Heard::Positive));
    }

    #[test]
    fn ids_and_servfail_keep_everything_else() {
        let mut q = query_message(0xabcd, "Mixed.Case.", RecordType::AAAA);
        q.metadata.checking_disabled = true;
        q.edns = Some(Edns::new());
        let bytes = q.to_vec().unwrap();
        let mut moved = bytes.clone();
        set_id(&mut moved, 0x0102);
        assert_eq!(&moved[..2], &[1, 2]);
        assert_eq!(moved[2..], bytes[2..]);
        assert_eq!(id_of(&moved), 0x0102);
        let mut short = [1];
        set_id(&mut short, 5);
        assert_eq!(short, [1]);
        assert_eq!(id_of(&short), 0);

        let read = read_query(&bytes).unwrap();
        // The stored query carries the id of the last attempt: the SERVFAIL has the client's.
        let fail = Message::from_vec(&servfail(&moved, &read)).unwrap();
        assert_eq!(fail.metadata.id, 0xabcd);
        assert_eq!(fail.metadata.message_type, MessageType::Response);
        assert_eq!(fail.metadata.response_code, ResponseCode::ServFail);
        assert!(fail.metadata.recursion_desired && fail.metadata.checking_disabled);
        assert_eq!(fail.queries, q.queries);
        assert!(fail.answers.is_empty() && fail.edns.is_none());
        // The name's case, as the client sent it.
        assert_eq!(fail.queries[0].name().to_ascii(), "Mixed.Case.");
    }

    #[test]
    fn frames_come_out_whole_and_in_order() {
        let mut received = framed(b"abc");
        received.extend(framed(b"de"));
        received.extend_from_slice(&[0, 5, b'x']);
        assert_eq!(take_frame(&mut received), Some(b"abc".to_vec()));
        assert_eq!(take_frame(&mut received), Some(b"de".to_vec()));
        assert_eq!(take_frame(&mut received), None);
        assert_eq!(received, [0, 5, b'x']);
    }

    #[test]
    fn ids_vary() {
        let mut ids = Ids::new();
        let seen: std::collections::BTreeSet<u16> = (0..64).map(|_| ids.fresh()).collect();
        assert!(seen.len() > 60, "{} distinct ids of 64", seen.len());
    }

    proptest! {
        #[test]
        fn no_bytes_make_the_wire_code_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            id in any::<u16>(),
        ) {
            let question = Query::query(name("db."), RecordType::A);
            let _ = read_reply(&bytes, id, &question);
            if let Some(read) = read_query(&bytes) {
                let _ = servfail(&bytes, &read);
                let _ = read_reply(&bytes, read.id, &read.question);
            }
            let mut copy = bytes.clone();
            set_id(&mut copy, id);
            let _ = id_of(&copy);
            let mut received = bytes.clone();
            while take_frame(&mut received).is_some() {}
        }

        #[test]
        fn mangled_real_replies_never_panic(
            cut in 0usize..200,
            flips in proptest::collection::vec((0usize..200, any::<u8>()), 0..8),
        ) {
            let q = query_message(3, "db.", RecordType::A);
            let mut r = response(&q, ResponseCode::NoError);
            r.add_answer(Record::from_rdata(name("db."), 60, RData::A(A::new(172, 30, 0, 5))));
            let mut bytes = r.to_vec().unwrap();
            for (at, value) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b = value;
                }
            }
            bytes.truncate(cut);
            let _ = read_reply(&bytes, 3, &q.queries[0]);
            if let Some(read) = read_query(&bytes) {
                let _ = servfail(&bytes, &read);
            }
        }
    }
}
