//! The resolver's state machine, without sockets (quinn-proto style): names and datagrams and time
//! go in; datagrams to send, TCP connections to open or close, and finished lookups come out. The IO
//! glue in `io.rs` moves the bytes; everything about retries, server rotation and merging A with AAAA
//! lives here and is tested with byte strings and a fake clock.
//!
//! One *lookup* per name is in flight at a time, however many checks wait for it; a lookup owns one
//! *question* per record type, each with its own transaction id, timer and position in the server list.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RecordType};

use super::wire::{self, IdSource, Reply};
use super::{Addrs, DnsError};

/// Tries at finding a transaction id not already in flight before giving up on a question. With at most
/// a few thousand questions in flight out of 65,536 ids, needing more than a handful means the table is
/// nearly full.
const ID_ALLOCATION_TRIES: usize = 32;
/// Questions one resolver has sent and not yet seen answered; the rest wait their turn. A burst beyond
/// what an upstream's socket buffer holds (Linux's default 208 KiB fits about 256 small datagrams, which
/// every engine thread shares) is dropped by its kernel unseen, and each dropped question costs an attempt
/// timeout, or worse an IPv4-only answer when its AAAA was the one dropped. It also bounds the answers
/// that can pile up in our own socket's buffer. At a 20 ms round trip it still allows 3,200 questions/s.
pub(crate) const MAX_QUESTIONS_IN_FLIGHT: usize = 64;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// One encoded question for one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// Transaction id; also names the TCP connection carrying it.
    pub(crate) id: u16,
    pub(crate) server: SocketAddr,
    pub(crate) bytes: Vec<u8>,
}

/// Work for the TCP side of the IO glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TcpAction {
    /// Connect to `server`, send the question with a length prefix, read one response.
    Open(Outgoing),
    /// Drop the connection of this question, if it is still open: its answer is no longer wanted.
    Close(u16),
}

/// A finished lookup: every waiter gets the same result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    /// Normalized name, the cache key.
    pub(crate) key: String,
    pub(crate) waiters: Vec<u64>,
    pub(crate) result: Result<Addrs, DnsError>,
    /// Smallest TTL behind a positive result (zero otherwise).
    pub(crate) ttl: Duration,
}

/// Upstream traffic counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ResolverCounters {
    /// Questions sent, UDP and TCP, retransmissions included.
    pub(crate) queries_sent: u64,
    /// Attempts that got no answer within the attempt timeout.
    pub(crate) timeouts: u64,
    /// Truncated UDP answers retried over TCP.
    pub(crate) tcp_fallbacks: u64,
}

/// What one question ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Addrs { addrs: Vec<IpAddr>, ttl_secs: u32 },
    NotFound,
    NoRecords,
    Failed(String),
}

#[derive(Debug)]
enum Slot {
    Pending(u16),
    Done(Outcome),
}

#[derive(Debug)]
struct Lookup {
    waiters: Vec<u64>,
    a: Slot,
    /// `None` when IPv6 is disabled.
    aaaa: Option<Slot>,
}

#[derive(Debug)]
struct Question {
    key: String,
    name: Name,
    rtype: RecordType,
    bytes: Vec<u8>,
    /// Index into the server list of the current attempt.
    server: usize,
    /// UDP sends so far; TCP retries of a truncated answer do not count, they are part of the same attempt.
    sends: u32,
    transport: Transport,
    deadline: Instant,
    /// Waiting in `unsent` for room under the in-flight limit; no timer is armed for it yet.
    unsent: bool,
}

/// The sans-IO resolver.
#[derive(Debug)]
pub(crate) struct Resolver {
    servers: Vec<SocketAddr>,
    attempt_timeout: Duration,
    /// `attempts` rounds over the server list.
    max_sends: u32,
    ipv6: bool,
    ids: IdSource,
    lookups: HashMap<String, Lookup>,
    questions: HashMap<u16, Question>,
    /// Attempt deadlines, ordered, so the earliest is found without a scan.
    timers: BTreeSet<(Instant, u16)>,
    /// Which lookup each waiter is attached to, for `cancel`.
    waiting: HashMap<u64, String>,
    udp_out: VecDeque<Outgoing>,
    /// Questions not sent yet, oldest first, because [`MAX_QUESTIONS_IN_FLIGHT`] others are out.
    unsent: VecDeque<u16>,
    tcp_out: VecDeque<TcpAction>,
    completed: VecDeque<Completion>,
    counters: ResolverCounters,
}

impl Resolver {
    /// A resolver asking `servers` in order, `attempts` rounds (at least one), waiting `attempt_timeout`
    /// for each answer, with at most [`MAX_QUESTIONS_IN_FLIGHT`] questions out at once. `ipv6` adds an
    /// AAAA question to every lookup.
    pub(crate) fn new(servers: Vec<SocketAddr>, attempt_timeout: Duration, attempts: u8, ipv6: bool) -> Resolver {
        let rounds = u32::from(attempts.max(1));
        let max_sends = rounds.saturating_mul(u32::try_from(servers.len()).unwrap_or(u32::MAX));
        Resolver {
            servers,
            attempt_timeout,
            max_sends,
            ipv6,
            ids: IdSource::new(),
            lookups: HashMap::new(),
            questions: HashMap::new(),
            timers: BTreeSet::new(),
            waiting: HashMap::new(),
            udp_out: VecDeque::new(),
            unsent: VecDeque::new(),
            tcp_out: VecDeque::new(),
            completed: VecDeque::new(),
            counters: ResolverCounters::default(),
        }
    }

    /// Attaches `waiter` to the lookup of `key` (normalized) / `name` (fully qualified), starting it if
    /// no other waiter already did. A waiter attached elsewhere is moved.
    pub(crate) fn start(&mut self, key: &str, name: &Name, waiter: u64, now: Instant) {
        self.cancel(waiter);
        self.waiting.insert(waiter, key.to_string());
        if let Some(lookup) = self.lookups.get_mut(key) {
            lookup.waiters.push(waiter);
            return;
        }
        let a = self.ask(key, name, RecordType::A, now);
        let aaaa = self.ipv6.then(|| self.ask(key, name, RecordType::AAAA, now));
        self.lookups.insert(
            key.to_string(),
            Lookup {
                waiters: vec![waiter],
                a,
                aaaa,
            },
        );
        // A question can fail before anything is sent (no free id); the lookup may already be complete.
        self.try_complete(key);
    }

    /// Detaches `waiter`; the lookup goes on so that its answer still reaches the cache.
    pub(crate) fn cancel(&mut self, waiter: u64) {
        let Some(key) = self.waiting.remove(&waiter) else {
            return;
        };
        if let Some(lookup) = self.lookups.get_mut(&key) {
            if let Some(position) = lookup.waiters.iter().position(|w| *w == waiter) {
                lookup.waiters.swap_remove(position);
            }
        }
    }

    /// A message from upstream `from`. Anything that is not a valid answer to a question in flight is
    /// dropped (logged at debug): it may be late, duplicated, spoofed or garbage.
    pub(crate) fn on_message(&mut self, from: SocketAddr, bytes: &[u8], transport: Transport, now: Instant) {
        let Some(id) = wire::message_id(bytes) else {
            tracing::debug!(%from, len = bytes.len(), "dns: runt message dropped");
            return;
        };
        let Some(question) = self.questions.get(&id).filter(|q| !q.unsent) else {
            tracing::debug!(%from, id, "dns: message for no question in flight dropped");
            return;
        };
        let current_server = self.servers.get(question.server) == Some(&from);
        let current_tcp = question.transport == Transport::Tcp;
        let reply = match wire::parse_response(bytes, id, &question.name, question.rtype) {
            Ok(reply) => reply,
            Err(error) => {
                tracing::debug!(%from, id, %error, "dns: invalid response dropped");
                // A TCP connection only ever carries this answer; garbage on it ends the attempt.
                if transport == Transport::Tcp && current_tcp {
                    self.next_attempt(id, now, &format!("{from}: {error}"));
                }
                return;
            }
        };
        match reply {
            Reply::Addrs { addrs, ttl_secs } => self.finish(id, Outcome::Addrs { addrs, ttl_secs }, now),
            Reply::NotFound => self.finish(id, Outcome::NotFound, now),
            Reply::NoRecords => self.finish(id, Outcome::NoRecords, now),
            // A late failure from a server we already moved past must not skip the current one too.
            Reply::ServerFailure { rcode } if current_server => self.next_attempt(id, now, &format!("{from}: {rcode}")),
            Reply::ServerFailure { .. } => {}
            Reply::Truncated if transport == Transport::Tcp => {
                self.next_attempt(id, now, &format!("{from}: truncated over TCP"));
            }
            // Already fetching over TCP: a second truncated UDP copy changes nothing.
            Reply::Truncated if current_tcp => {}
            Reply::Truncated => self.retry_over_tcp(id, from, now),
        }
    }

    /// Sending the question `id` over `transport` failed (socket error, refused or broken connection).
    pub(crate) fn on_transport_error(&mut self, id: u16, transport: Transport, detail: &str, now: Instant) {
        let Some(question) = self.questions.get(&id) else {
            return;
        };
        if question.transport == transport && !question.unsent {
            self.next_attempt(id, now, detail);
        }
    }

    /// Expires every attempt whose deadline is not after `now`.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.timers.first() {
            if deadline > now {
                break;
            }
            // Popped before acting, so the loop ends even if the question is somehow gone.
            self.timers.pop_first();
            self.counters.timeouts += 1;
            let detail = match self.questions.get(&id).and_then(|q| self.servers.get(q.server)) {
                Some(server) => format!("{server}: no answer within {:?}", self.attempt_timeout),
                None => "no answer".to_string(),
            };
            self.next_attempt(id, now, &detail);
        }
    }

    /// When `on_timeout` has work next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|&(deadline, _)| deadline)
    }

    /// The next datagram to send over UDP.
    pub(crate) fn poll_udp(&mut self) -> Option<Outgoing> {
        self.udp_out.pop_front()
    }

    /// The next TCP connection to open or close.
    pub(crate) fn poll_tcp(&mut self) -> Option<TcpAction> {
        self.tcp_out.pop_front()
    }

    /// The next finished lookup.
    pub(crate) fn poll_completion(&mut self) -> Option<Completion> {
        self.completed.pop_front()
    }

    pub(crate) fn counters(&self) -> ResolverCounters {
        self.counters
    }

    /// Creates one question and sends it, or queues it while [`MAX_QUESTIONS_IN_FLIGHT`] others are out; a question
    /// that cannot even be encoded is failed at once.
    fn ask(&mut self, key: &str, name: &Name, rtype: RecordType, now: Instant) -> Slot {
        if self.servers.is_empty() {
            return Slot::Done(Outcome::Failed("no nameserver configured".to_string()));
        }
        let Some(id) = self.free_id() else {
            return Slot::Done(Outcome::Failed("too many DNS questions in flight".to_string()));
        };
        let bytes = match wire::build_query(id, name, rtype) {
            Ok(bytes) => bytes,
            Err(error) => return Slot::Done(Outcome::Failed(error.to_string())),
        };
        let question = Question {
            key: key.to_string(),
            name: name.clone(),
            rtype,
            bytes,
            server: 0,
            sends: 0,
            transport: Transport::Udp,
            deadline: now,
            unsent: false,
        };
        let room = self.in_flight() < MAX_QUESTIONS_IN_FLIGHT;
        self.questions.insert(id, question);
        if room {
            self.send_udp(id, now);
        } else if let Some(question) = self.questions.get_mut(&id) {
            question.unsent = true;
            self.unsent.push_back(id);
        }
        Slot::Pending(id)
    }

    /// Sends queued questions while there is room under the in-flight limit; their attempt timers start
    /// now, not when they were queued.
    fn send_unsent(&mut self, now: Instant) {
        while self.in_flight() < MAX_QUESTIONS_IN_FLIGHT {
            let Some(id) = self.unsent.pop_front() else { return };
            if let Some(question) = self.questions.get_mut(&id) {
                question.unsent = false;
                self.send_udp(id, now);
            }
        }
    }

    /// Questions sent and not over yet (TCP retries included).
    fn in_flight(&self) -> usize {
        self.questions.len().saturating_sub(self.unsent.len())
    }

    fn free_id(&mut self) -> Option<u16> {
        (0..ID_ALLOCATION_TRIES)
            .map(|_| self.ids.next_id())
            .find(|id| !self.questions.contains_key(id))
    }

    /// (Re)sends question `id` over UDP to its current server and arms its timer.
    fn send_udp(&mut self, id: u16, now: Instant) {
        let deadline = now + self.attempt_timeout;
        let Some(question) = self.questions.get_mut(&id) else {
            return;
        };
        let Some(&server) = self.servers.get(question.server) else {
            return;
        };
        question.sends += 1;
        question.transport = Transport::Udp;
        let previous = std::mem::replace(&mut question.deadline, deadline);
        self.udp_out.push_back(Outgoing {
            id,
            server,
            bytes: question.bytes.clone(),
        });
        self.timers.remove(&(previous, id));
        self.timers.insert((deadline, id));
        self.counters.queries_sent += 1;
    }

    fn retry_over_tcp(&mut self, id: u16, server: SocketAddr, now: Instant) {
        let deadline = now + self.attempt_timeout;
        let Some(question) = self.questions.get_mut(&id) else {
            return;
        };
        question.transport = Transport::Tcp;
        // A late truncated answer may come from a server we already moved past; the TCP attempt is
        // with that server, so errors from it must count as the current attempt's.
        if let Some(index) = self.servers.iter().position(|s| *s == server) {
            question.server = index;
        }
        let previous = std::mem::replace(&mut question.deadline, deadline);
        self.tcp_out.push_back(TcpAction::Open(Outgoing {
            id,
            server,
            bytes: question.bytes.clone(),
        }));
        self.timers.remove(&(previous, id));
        self.timers.insert((deadline, id));
        self.counters.queries_sent += 1;
        self.counters.tcp_fallbacks += 1;
    }

    /// The current attempt of `id` failed: ask the next server, or give up after the last round.
    fn next_attempt(&mut self, id: u16, now: Instant, detail: &str) {
        let server_count = self.servers.len();
        let Some(question) = self.questions.get_mut(&id) else {
            return;
        };
        if question.transport == Transport::Tcp {
            self.tcp_out.push_back(TcpAction::Close(id));
        }
        if question.sends >= self.max_sends {
            let rounds = question.sends / u32::try_from(server_count.max(1)).unwrap_or(u32::MAX);
            let detail = format!("{detail} (after {rounds} round(s) over {server_count} server(s))");
            self.finish(id, Outcome::Failed(detail), now);
            return;
        }
        question.server = (question.server + 1) % server_count.max(1);
        self.send_udp(id, now);
    }

    /// Question `id` is over; record its outcome in its lookup.
    fn finish(&mut self, id: u16, outcome: Outcome, now: Instant) {
        let Some(question) = self.questions.remove(&id) else {
            return;
        };
        self.send_unsent(now);
        self.timers.remove(&(question.deadline, id));
        if question.transport == Transport::Tcp {
            self.tcp_out.push_back(TcpAction::Close(id));
        }
        let Some(lookup) = self.lookups.get_mut(&question.key) else {
            return;
        };
        let (slot, sibling) = match question.rtype {
            RecordType::A => (&mut lookup.a, lookup.aaaa.as_ref()),
            _ => match lookup.aaaa.as_mut() {
                Some(aaaa) => (aaaa, Some(&lookup.a)),
                None => return,
            },
        };
        let has_addrs = matches!(outcome, Outcome::Addrs { .. });
        *slot = Slot::Done(outcome);
        if let (true, Some(&Slot::Pending(sibling_id))) = (has_addrs, sibling) {
            self.hurry(sibling_id, now);
        }
        self.try_complete(&question.key);
    }

    /// The other family already has addresses, so a server that drops this question (many middleboxes
    /// drop AAAA) must not hold the check for every remaining round: one more attempt timeout at most.
    fn hurry(&mut self, id: u16, now: Instant) {
        let max_sends = self.max_sends;
        let Some(question) = self.questions.get_mut(&id) else {
            return;
        };
        if question.unsent {
            // Its one send, when its turn comes, is the last attempt; its timer starts then.
            question.sends = question.sends.max(max_sends.saturating_sub(1));
            return;
        }
        question.sends = question.sends.max(max_sends);
        let deadline = question.deadline.min(now + self.attempt_timeout);
        let previous = std::mem::replace(&mut question.deadline, deadline);
        self.timers.remove(&(previous, id));
        self.timers.insert((deadline, id));
    }

    /// Completes the lookup of `key` once all its questions are over.
    fn try_complete(&mut self, key: &str) {
        let Some(lookup) = self.lookups.get(key) else { return };
        let done = |slot: &Slot| matches!(slot, Slot::Done(_));
        if !done(&lookup.a) || !lookup.aaaa.as_ref().is_none_or(done) {
            return;
        }
        let Some(lookup) = self.lookups.remove(key) else { return };
        for waiter in &lookup.waiters {
            self.waiting.remove(waiter);
        }
        let outcomes = [Some(lookup.a), lookup.aaaa]
            .into_iter()
            .flatten()
            .filter_map(|slot| match slot {
                Slot::Done(outcome) => Some(outcome),
                Slot::Pending(_) => None,
            });
        let (result, ttl) = merge(key, outcomes);
        self.completed.push_back(Completion {
            key: key.to_string(),
            waiters: lookup.waiters,
            result,
            ttl,
        });
    }
}

/// One result from the A and AAAA outcomes (in that order): any addresses win, IPv4 first; else an
/// NXDOMAIN; else "no records" only if every question said so; else the resolver is to blame, since
/// a failed question might have held the only addresses.
fn merge(name: &str, outcomes: impl Iterator<Item = Outcome>) -> (Result<Addrs, DnsError>, Duration) {
    let mut addrs = Vec::new();
    let mut ttl_secs = u32::MAX;
    let mut not_found = false;
    let mut all_no_records = true;
    let mut failures = Vec::new();
    for outcome in outcomes {
        all_no_records &= outcome == Outcome::NoRecords;
        match outcome {
            Outcome::Addrs {
                addrs: found,
                ttl_secs: ttl,
            } => {
                addrs.extend(found);
                ttl_secs = ttl_secs.min(ttl);
            }
            Outcome::NotFound => not_found = true,
            Outcome::NoRecords => {}
            Outcome::Failed(detail) => failures.push(detail),
        }
    }
    let name = name.to_string();
    if !addrs.is_empty() {
        return (Ok(Arc::from(addrs)), Duration::from_secs(ttl_secs.into()));
    }
    let error = if not_found {
        DnsError::NotFound { name }
    } else if all_no_records {
        DnsError::NoRecords { name }
    } else {
        DnsError::Unavailable {
            name,
            detail: failures.join("; "),
        }
    };
    (Err(error), Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA};
    use hickory_proto::rr::{RData, Record};

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn servers(count: u8) -> Vec<SocketAddr> {
        (1..=count).map(|i| SocketAddr::from(([192, 0, 2, i], 53))).collect()
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn sent(resolver: &mut Resolver) -> Vec<Outgoing> {
        std::iter::from_fn(|| resolver.poll_udp()).collect()
    }

    /// The response to `question` with `rcode` and the given address records.
    fn answer(question: &Outgoing, rcode: ResponseCode, addrs: &[IpAddr]) -> Vec<u8> {
        let query = Message::from_vec(&question.bytes).unwrap();
        let mut response = Message::response(query.metadata.id, OpCode::Query);
        response.metadata.response_code = rcode;
        response.add_queries(query.queries.iter().cloned());
        let owner = query.queries[0].name().clone();
        for addr in addrs {
            let data = match addr {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            response.add_answer(Record::from_rdata(owner.clone(), 30, data));
        }
        response.to_vec().unwrap()
    }

    fn rtype(question: &Outgoing) -> RecordType {
        Message::from_vec(&question.bytes).unwrap().queries[0].query_type()
    }

    #[test]
    fn waiters_on_one_name_share_one_question_per_type() {
        let now = Instant::now();
        let mut resolver = Resolver::new(servers(1), TIMEOUT, 2, true);
        for waiter in 0..1000 {
            resolver.start("example.test", &name("example.test."), waiter, now);
        }
        let out = sent(&mut resolver);
        assert_eq!(
            out.iter().map(rtype).collect::<Vec<_>>(),
            vec![RecordType::A, RecordType::AAAA]
        );

        let v4: IpAddr = "192.0.2.80".parse().unwrap();
        let v6: IpAddr = "2001:db8::80".parse().unwrap();
        // AAAA answers first; the result still lists IPv4 first.
        resolver.on_message(
            out[1].server,
            &answer(&out[1], ResponseCode::NoError, &[v6]),
            Transport::Udp,
            now,
        );
        assert_eq!(resolver.poll_completion(), None);
        resolver.on_message(
            out[0].server,
            &answer(&out[0], ResponseCode::NoError, &[v4]),
            Transport::Udp,
            now,
        );
        let completion = resolver.poll_completion().unwrap();
        assert_eq!(completion.waiters.len(), 1000);
        assert_eq!(completion.result, Ok(Arc::from(vec![v4, v6])));
        assert_eq!(completion.ttl, Duration::from_secs(30));
        assert_eq!(resolver.next_deadline(), None);
    }

    #[test]
    fn timeouts_rotate_servers_then_give_up_as_unavailable() {
        let start = Instant::now();
        let mut resolver = Resolver::new(servers(2), TIMEOUT, 2, false);
        resolver.start("slow.test", &name("slow.test."), 7, start);
        let mut order = vec![sent(&mut resolver)[0].server];
        let mut now = start;
        for _ in 0..3 {
            now = resolver.next_deadline().unwrap();
            resolver.on_timeout(now);
            order.push(sent(&mut resolver)[0].server);
        }
        assert_eq!(order, [servers(2), servers(2)].concat(), "two rounds over two servers");
        assert_eq!(resolver.poll_completion(), None);
        resolver.on_timeout(resolver.next_deadline().unwrap());
        let completion = resolver.poll_completion().unwrap();
        assert!(
            matches!(&completion.result, Err(e @ DnsError::Unavailable { .. }) if e.is_unavailable()),
            "{completion:?}"
        );
        assert_eq!(
            resolver.counters(),
            ResolverCounters {
                queries_sent: 4,
                timeouts: 4,
                tcp_fallbacks: 0
            }
        );
        assert_eq!(now, start + 3 * TIMEOUT);
    }

    #[test]
    fn servfail_moves_to_the_next_server_at_once() {
        let now = Instant::now();
        let mut resolver = Resolver::new(servers(2), TIMEOUT, 1, false);
        resolver.start("flaky.test", &name("flaky.test."), 1, now);
        let first = sent(&mut resolver).remove(0);
        resolver.on_message(
            first.server,
            &answer(&first, ResponseCode::ServFail, &[]),
            Transport::Udp,
            now,
        );
        let second = sent(&mut resolver).remove(0);
        assert_eq!(second.server, servers(2)[1]);
        // A stale SERVFAIL from the first server must not skip the second one.
        resolver.on_message(
            first.server,
            &answer(&first, ResponseCode::ServFail, &[]),
            Transport::Udp,
            now,
        );
        assert!(sent(&mut resolver).is_empty());
        assert_eq!(resolver.poll_completion(), None);
        resolver.on_message(
            second.server,
            &answer(&second, ResponseCode::NXDomain, &[]),
            Transport::Udp,
            now,
        );
        let result = resolver.poll_completion().unwrap().result;
        assert!(matches!(&result, Err(e @ DnsError::NotFound { .. }) if !e.is_unavailable()));
    }

    #[test]
    fn truncated_answer_is_retried_over_tcp_on_the_same_server() {
        let now = Instant::now();
        let mut resolver = Resolver::new(servers(2), TIMEOUT, 1, false);
        resolver.start("big.test", &name("big.test."), 1, now);
        let question = sent(&mut resolver).remove(0);
        let query = Message::from_vec(&question.bytes).unwrap();
        let mut truncated = Message::response(query.metadata.id, OpCode::Query);
        truncated.add_queries(query.queries.iter().cloned());
        truncated.metadata.truncation = true;
        resolver.on_message(question.server, &truncated.to_vec().unwrap(), Transport::Udp, now);
        assert_eq!(resolver.poll_tcp(), Some(TcpAction::Open(question.clone())));

        let v4: IpAddr = "192.0.2.99".parse().unwrap();
        resolver.on_message(
            question.server,
            &answer(&question, ResponseCode::NoError, &[v4]),
            Transport::Tcp,
            now,
        );
        assert_eq!(resolver.poll_tcp(), Some(TcpAction::Close(question.id)));
        assert_eq!(resolver.poll_completion().unwrap().result, Ok(Arc::from(vec![v4])));
        assert_eq!(resolver.counters().tcp_fallbacks, 1);
    }

    #[test]
    fn failed_tcp_moves_on_to_the_next_server_over_udp() {
        let now = Instant::now();
        let mut resolver = Resolver::new(servers(2), TIMEOUT, 1, false);
        resolver.start("big.test", &name("big.test."), 1, now);
        let question = sent(&mut resolver).remove(0);
        let query = Message::from_vec(&question.bytes).unwrap();
        let mut truncated = Message::response(query.metadata.id, OpCode::Query);
        truncated.add_queries(query.queries.iter().cloned());
        truncated.metadata.truncation = true;
        resolver.on_message(question.server, &truncated.to_vec().unwrap(), Transport::Udp, now);
        assert!(matches!(resolver.poll_tcp(), Some(TcpAction::Open(_))));
        resolver.on_transport_error(question.id, Transport::Udp, "ignored: wrong transport", now);
        assert!(sent(&mut resolver).is_empty());
        resolver.on_transport_error(question.id, Transport::Tcp, "connection refused", now);
        assert_eq!(resolver.poll_tcp(), Some(TcpAction::Close(question.id)));
        assert_eq!(sent(&mut resolver)[0].server, servers(2)[1]);
    }

    #[test]
    fn addresses_of_one_family_survive_the_other_timing_out() {
        let start = Instant::now();
        let mut resolver = Resolver::new(servers(3), TIMEOUT, 3, true);
        resolver.start("v4only.test", &name("v4only.test."), 1, start);
        let out = sent(&mut resolver);
        let v4: IpAddr = "192.0.2.4".parse().unwrap();
        let later = start + TIMEOUT / 2;
        resolver.on_message(
            out[0].server,
            &answer(&out[0], ResponseCode::NoError, &[v4]),
            Transport::Udp,
            later,
        );
        // The AAAA question keeps its first deadline and is not retried afterwards.
        assert_eq!(resolver.next_deadline(), Some(start + TIMEOUT));
        resolver.on_timeout(start + TIMEOUT);
        assert!(sent(&mut resolver).is_empty());
        assert_eq!(resolver.poll_completion().unwrap().result, Ok(Arc::from(vec![v4])));
    }

    #[test]
    fn no_records_with_a_failed_family_is_unavailable_not_no_records() {
        let start = Instant::now();
        let mut resolver = Resolver::new(servers(1), TIMEOUT, 1, true);
        resolver.start("odd.test", &name("odd.test."), 1, start);
        let out = sent(&mut resolver);
        resolver.on_message(
            out[0].server,
            &answer(&out[0], ResponseCode::NoError, &[]),
            Transport::Udp,
            start,
        );
        resolver.on_timeout(start + TIMEOUT);
        let result = resolver.poll_completion().unwrap().result;
        assert!(matches!(result, Err(DnsError::Unavailable { .. })), "{result:?}");
    }

    #[test]
    fn cancelled_waiter_is_not_reported_but_the_lookup_completes() {
        let now = Instant::now();
        let mut resolver = Resolver::new(servers(1), TIMEOUT, 1, false);
        resolver.start("example.test", &name("example.test."), 1, now);
        resolver.start("example.test", &name("example.test."), 2, now);
        resolver.cancel(1);
        let out = sent(&mut resolver);
        assert_eq!(out.len(), 1);
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        resolver.on_message(
            out[0].server,
            &answer(&out[0], ResponseCode::NoError, &[v4]),
            Transport::Udp,
            now,
        );
        assert_eq!(resolver.poll_completion().unwrap().waiters, vec![2]);
    }

    #[test]
    fn mismatched_or_garbage_messages_change_nothing() {
        let now = Instant::now();
        let mut resolver = Resolver::new(servers(1), TIMEOUT, 1, false);
        resolver.start("example.test", &name("example.test."), 1, now);
        let question = sent(&mut resolver).remove(0);
        let mut wrong_question = question.clone();
        wrong_question.bytes = wire::build_query(question.id, &name("other.test."), RecordType::A).unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        for bytes in [
            vec![],
            vec![0xff; 3],
            question.bytes.clone(),
            answer(&wrong_question, ResponseCode::NoError, &[v4]),
        ] {
            resolver.on_message(question.server, &bytes, Transport::Udp, now);
        }
        assert_eq!(resolver.poll_completion(), None);
        assert_eq!(resolver.next_deadline(), Some(now + TIMEOUT));
    }

    #[test]
    fn questions_beyond_the_in_flight_limit_wait_for_room_and_time_from_their_send() {
        let now = Instant::now();
        let mut resolver = Resolver::new(servers(1), TIMEOUT, 2, true);
        let lookups = MAX_QUESTIONS_IN_FLIGHT / 2 + 1;
        for i in 0..lookups {
            let key = format!("n{i}.test");
            resolver.start(&key, &name(&format!("{key}.")), i as u64, now);
        }
        let first = sent(&mut resolver);
        assert_eq!(
            first.len(),
            MAX_QUESTIONS_IN_FLIGHT,
            "the last lookup's two questions wait"
        );
        assert_eq!(resolver.counters().queries_sent, MAX_QUESTIONS_IN_FLIGHT as u64);

        // An answer frees one place: the oldest waiting question goes out, its timer starting then.
        let later = now + TIMEOUT / 2;
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        resolver.on_message(
            first[0].server,
            &answer(&first[0], ResponseCode::NoError, &[v4]),
            Transport::Udp,
            later,
        );
        let next = sent(&mut resolver);
        assert_eq!(next.len(), 1);
        assert_eq!(rtype(&next[0]), RecordType::A);
        resolver.on_timeout(now + TIMEOUT);
        assert_eq!(
            resolver.counters().timeouts,
            MAX_QUESTIONS_IN_FLIGHT as u64 - 1,
            "only questions sent at `now` time out at now + TIMEOUT"
        );
        assert_eq!(resolver.next_deadline(), Some(later + TIMEOUT));
    }

    #[test]
    fn no_nameserver_fails_at_once() {
        let now = Instant::now();
        let mut resolver = Resolver::new(Vec::new(), TIMEOUT, 2, true);
        resolver.start("example.test", &name("example.test."), 1, now);
        let result = resolver.poll_completion().unwrap().result;
        assert!(matches!(result, Err(DnsError::Unavailable { .. })));
    }
}
