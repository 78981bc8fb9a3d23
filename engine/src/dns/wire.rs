//! DNS messages on the wire: A/AAAA questions out, answers in. hickory-proto does the byte-level
//! encoding; this file decides what a response *means* for one question (addresses, NXDOMAIN, try
//! another server, retry over TCP) and rejects anything that does not answer it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// UDP payload size advertised through EDNS(0): the DNS Flag Day 2020 value, small enough to avoid IP
/// fragmentation on any path, large enough that most answers need no TCP retry.
pub(crate) const EDNS_PAYLOAD_BYTES: u16 = 1232;
/// Longest CNAME chain followed inside one answer. Recursive resolvers stop around 8–16; a longer chain
/// is a loop or an attack.
const MAX_CNAME_HOPS: usize = 8;

/// What a well-formed response to our question says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Addresses for the name (after CNAMEs); `ttl_secs` is the smallest TTL along the chain.
    Addrs { addrs: Vec<IpAddr>, ttl_secs: u32 },
    /// NXDOMAIN: the name does not exist.
    NotFound,
    /// The name exists but has no record of the asked type.
    NoRecords,
    /// The server could not answer (SERVFAIL, REFUSED, ...): ask the next one.
    ServerFailure { rcode: String },
    /// TC bit set: the full answer must be fetched over TCP.
    Truncated,
}

/// Why a datagram is not a response to our question. Such datagrams are dropped, not acted on: they
/// may be late, spoofed or garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("undecodable message: {0}")]
    Malformed(String),
    #[error("message is a query, not a response")]
    NotAResponse,
    #[error("response id {got:#06x}, expected {expected:#06x}")]
    WrongId { expected: u16, got: u16 },
    #[error("response answers another question")]
    QuestionMismatch,
}

/// Encodes a recursive question for `name`/`rtype` with transaction id `id`.
pub(crate) fn build_query(id: u16, name: &Name, rtype: RecordType) -> Result<Vec<u8>, WireError> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD_BYTES);
    message.set_edns(edns);
    message.to_vec().map_err(|e| WireError::Malformed(e.to_string()))
}

/// The transaction id of a message, read without decoding the rest (to find the pending question).
pub(crate) fn message_id(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// Interprets `bytes` as the response to question `id`, `name`, `rtype`.
pub(crate) fn parse_response(bytes: &[u8], id: u16, name: &Name, rtype: RecordType) -> Result<Reply, WireError> {
    let message = Message::from_vec(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    let metadata = &message.metadata;
    if metadata.message_type != MessageType::Response {
        return Err(WireError::NotAResponse);
    }
    if metadata.id != id {
        return Err(WireError::WrongId {
            expected: id,
            got: metadata.id,
        });
    }
    let rcode = metadata.response_code;
    // Some servers drop the question section from error responses; the id and source address already
    // matched, so an error without a question is still ours.
    let question_optional = rcode != ResponseCode::NoError && message.queries.is_empty();
    let question_matches = matches!(
        message.queries.as_slice(),
        [query] if query.query_type() == rtype && query.name().eq_ignore_root(name)
    );
    if !question_matches && !question_optional {
        return Err(WireError::QuestionMismatch);
    }
    if metadata.truncation {
        return Ok(Reply::Truncated);
    }
    match rcode {
        ResponseCode::NoError => Ok(follow_answers(&message, name, rtype)),
        ResponseCode::NXDomain => Ok(Reply::NotFound),
        other => Ok(Reply::ServerFailure {
            rcode: other.to_string(),
        }),
    }
}

/// Walks the answer section from `name` through CNAMEs to records of type `rtype`.
fn follow_answers(message: &Message, name: &Name, rtype: RecordType) -> Reply {
    let mut owner = name.clone();
    let mut ttl_secs = u32::MAX;
    for _ in 0..=MAX_CNAME_HOPS {
        let mut addrs = Vec::new();
        for record in message.answers.iter().filter(|r| r.name.eq_ignore_root(&owner)) {
            let addr = match (&record.data, rtype) {
                (RData::A(a), RecordType::A) => IpAddr::V4(a.0),
                (RData::AAAA(aaaa), RecordType::AAAA) => IpAddr::V6(aaaa.0),
                _ => continue,
            };
            ttl_secs = ttl_secs.min(record.ttl);
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if !addrs.is_empty() {
            return Reply::Addrs { addrs, ttl_secs };
        }
        let cname = message.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name.eq_ignore_root(&owner) => Some((target.0.clone(), r.ttl)),
            _ => None,
        });
        match cname {
            Some((target, ttl)) => {
                ttl_secs = ttl_secs.min(ttl);
                owner = target;
            }
            // The chain ends outside this answer (or the name has no such record): nothing usable.
            None => break,
        }
    }
    Reply::NoRecords
}

/// Transaction ids that an off-path attacker cannot predict from the previous ones (xorshift64*,
/// seeded from the process's random hasher keys). Not cryptographic; the source-address check and
/// the question match are the other two locks.
#[derive(Debug)]
pub(crate) struct IdSource {
    state: u64,
}

impl IdSource {
    pub(crate) fn new() -> IdSource {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(std::process::id().into());
        // xorshift must not start at zero.
        IdSource {
            state: hasher.finish() | 1,
        }
    }

    pub(crate) fn next_id(&mut self) -> u16 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        // The top bits of xorshift64* are the best mixed.
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 48) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::Record;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn response_to(query_bytes: &[u8]) -> Message {
        let query = Message::from_vec(query_bytes).unwrap();
        let mut response = Message::response(query.metadata.id, OpCode::Query);
        response.add_queries(query.queries.iter().cloned());
        response
    }

    #[test]
    fn query_round_trips_with_recursion_and_edns() {
        let bytes = build_query(0xbeef, &name("Example.test."), RecordType::AAAA).unwrap();
        assert_eq!(message_id(&bytes), Some(0xbeef));
        let decoded = Message::from_vec(&bytes).unwrap();
        assert!(decoded.metadata.recursion_desired);
        assert_eq!(decoded.metadata.message_type, MessageType::Query);
        assert_eq!(decoded.queries.len(), 1);
        assert_eq!(decoded.queries[0].query_type(), RecordType::AAAA);
        assert!(decoded.queries[0].name().eq_ignore_root(&name("example.test")));
        assert_eq!(decoded.edns.map(|e| e.max_payload()), Some(EDNS_PAYLOAD_BYTES));
    }

    #[test]
    fn a_answer_gives_addresses_and_min_ttl() {
        let qname = name("example.test.");
        let query = build_query(1, &qname, RecordType::A).unwrap();
        let mut response = response_to(&query);
        response.add_answer(Record::from_rdata(
            qname.clone(),
            300,
            RData::A(A([192, 0, 2, 1].into())),
        ));
        response.add_answer(Record::from_rdata(
            qname.clone(),
            120,
            RData::A(A([192, 0, 2, 2].into())),
        ));
        let reply = parse_response(&response.to_vec().unwrap(), 1, &qname, RecordType::A).unwrap();
        let addrs = vec![IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])];
        assert_eq!(reply, Reply::Addrs { addrs, ttl_secs: 120 });
    }

    #[test]
    fn cname_chain_is_followed_within_the_answer() {
        let qname = name("www.example.test.");
        let query = build_query(2, &qname, RecordType::AAAA).unwrap();
        let mut response = response_to(&query);
        let middle = name("cdn.example.net.");
        let last = name("EDGE.example.net.");
        // Out of order on purpose: servers need not list the chain in sequence.
        response.add_answer(Record::from_rdata(
            name("edge.example.net."),
            600,
            RData::AAAA(AAAA("2001:db8::1".parse().unwrap())),
        ));
        response.add_answer(Record::from_rdata(
            qname.clone(),
            900,
            RData::CNAME(CNAME(middle.clone())),
        ));
        response.add_answer(Record::from_rdata(middle, 60, RData::CNAME(CNAME(last))));
        let reply = parse_response(&response.to_vec().unwrap(), 2, &qname, RecordType::AAAA).unwrap();
        assert_eq!(
            reply,
            Reply::Addrs {
                addrs: vec!["2001:db8::1".parse().unwrap()],
                ttl_secs: 60
            }
        );
    }

    #[test]
    fn cname_without_target_records_is_no_records() {
        let qname = name("alias.example.test.");
        let query = build_query(3, &qname, RecordType::A).unwrap();
        let mut response = response_to(&query);
        response.add_answer(Record::from_rdata(
            qname.clone(),
            60,
            RData::CNAME(CNAME(name("elsewhere.test."))),
        ));
        let reply = parse_response(&response.to_vec().unwrap(), 3, &qname, RecordType::A).unwrap();
        assert_eq!(reply, Reply::NoRecords);
    }

    #[test]
    fn cname_loop_ends_as_no_records() {
        let qname = name("a.loop.test.");
        let query = build_query(4, &qname, RecordType::A).unwrap();
        let mut response = response_to(&query);
        response.add_answer(Record::from_rdata(
            qname.clone(),
            60,
            RData::CNAME(CNAME(name("b.loop.test."))),
        ));
        response.add_answer(Record::from_rdata(
            name("b.loop.test."),
            60,
            RData::CNAME(CNAME(qname.clone())),
        ));
        let reply = parse_response(&response.to_vec().unwrap(), 4, &qname, RecordType::A).unwrap();
        assert_eq!(reply, Reply::NoRecords);
    }

    #[test]
    fn response_codes_map_to_replies() {
        let qname = name("example.test.");
        let query = build_query(5, &qname, RecordType::A).unwrap();
        for (rcode, expected) in [
            (ResponseCode::NXDomain, Reply::NotFound),
            (
                ResponseCode::ServFail,
                Reply::ServerFailure {
                    rcode: ResponseCode::ServFail.to_string(),
                },
            ),
            (
                ResponseCode::Refused,
                Reply::ServerFailure {
                    rcode: ResponseCode::Refused.to_string(),
                },
            ),
            (ResponseCode::NoError, Reply::NoRecords),
        ] {
            let mut response = response_to(&query);
            response.metadata.response_code = rcode;
            let reply = parse_response(&response.to_vec().unwrap(), 5, &qname, RecordType::A).unwrap();
            assert_eq!(reply, expected, "{rcode:?}");
        }
    }

    #[test]
    fn error_without_question_section_is_accepted() {
        let qname = name("example.test.");
        let response = Message::error_msg(6, OpCode::Query, ResponseCode::Refused);
        let reply = parse_response(&response.to_vec().unwrap(), 6, &qname, RecordType::A).unwrap();
        assert!(matches!(reply, Reply::ServerFailure { .. }));
    }

    #[test]
    fn truncated_response_asks_for_tcp() {
        let qname = name("big.test.");
        let query = build_query(7, &qname, RecordType::A).unwrap();
        let mut response = response_to(&query);
        response.metadata.truncation = true;
        let reply = parse_response(&response.to_vec().unwrap(), 7, &qname, RecordType::A).unwrap();
        assert_eq!(reply, Reply::Truncated);
    }

    #[test]
    fn wrong_id_question_or_direction_is_rejected() {
        let qname = name("example.test.");
        let query = build_query(8, &qname, RecordType::A).unwrap();
        let response = response_to(&query).to_vec().unwrap();
        assert_eq!(
            parse_response(&response, 9, &qname, RecordType::A),
            Err(WireError::WrongId { expected: 9, got: 8 })
        );
        assert_eq!(
            parse_response(&response, 8, &name("other.test."), RecordType::A),
            Err(WireError::QuestionMismatch)
        );
        assert_eq!(
            parse_response(&response, 8, &qname, RecordType::AAAA),
            Err(WireError::QuestionMismatch)
        );
        assert_eq!(
            parse_response(&query, 8, &qname, RecordType::A),
            Err(WireError::NotAResponse)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let qname = name("example.test.");
        let valid = response_to(&build_query(10, &qname, RecordType::A).unwrap())
            .to_vec()
            .unwrap();
        for len in 0..valid.len() {
            // Every strict prefix must be rejected or, at worst, read as a response without panicking.
            let _ = parse_response(&valid[..len], 10, &qname, RecordType::A);
        }
        for garbage in [
            &b""[..],
            b"\x00",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(matches!(
                parse_response(garbage, 0xffff, &qname, RecordType::A),
                Err(WireError::Malformed(_))
            ));
        }
        assert_eq!(message_id(b"\x12"), None);
    }

    #[test]
    fn ids_vary() {
        let mut ids = IdSource::new();
        let first: Vec<u16> = (0..64).map(|_| ids.next_id()).collect();
        let distinct: std::collections::HashSet<_> = first.iter().collect();
        assert!(distinct.len() > 60, "{first:?}");
    }
}
