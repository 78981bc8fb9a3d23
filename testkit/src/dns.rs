//! A tiny authoritative DNS server for tests: it answers A, AAAA and CNAME questions from an in-memory
//! [`Zone`] over UDP and TCP on one port, counts the questions it receives, and can misbehave on purpose
//! (truncate over UDP, SERVFAIL, never answer) so the engine's resolver can be tested against every path
//! without leaving the machine.
//!
//! It is deliberately simple: blocking std threads, one question per message, no recursion, no EDNS
//! processing. Bind it to a `127.0.0.x` address with port 0 so that parallel tests never collide.
//!
//! ```no_run
//! use jetmon_testkit::dns::{DnsServer, Zone};
//! let zone = Zone::default().a("example.test", "192.0.2.1".parse().unwrap());
//! let server = DnsServer::start("127.0.0.53:0".parse().unwrap(), zone).unwrap();
//! println!("ask {}", server.addr());
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// TTL of every record unless [`Zone::ttl`] says otherwise.
pub const DEFAULT_TTL_SECS: u32 = 300;
/// How often the server threads look at the shutdown flag while idle.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Longest CNAME chain followed when building an answer; guards against loops in a test's zone.
const MAX_CNAME_HOPS: usize = 8;
/// Largest DNS message we read (TCP messages are bounded by their 16-bit length anyway).
const MAX_MESSAGE_BYTES: usize = 65_535;

/// Names and records the server answers with, and the names it misbehaves for. Built with chained calls;
/// names are compared case-insensitively and a trailing dot is optional.
#[derive(Debug, Default, Clone)]
pub struct Zone {
    nodes: HashMap<String, Node>,
    ttl: Option<u32>,
    truncate_udp: HashSet<String>,
    servfail: HashSet<String>,
    silent: HashSet<String>,
}

#[derive(Debug, Default, Clone)]
struct Node {
    a: Vec<Ipv4Addr>,
    aaaa: Vec<Ipv6Addr>,
    cname: Option<String>,
}

impl Zone {
    /// Adds an IPv4 address to `name`.
    pub fn a(mut self, name: &str, addr: Ipv4Addr) -> Self {
        self.nodes.entry(zone_key(name)).or_default().a.push(addr);
        self
    }

    /// Adds an IPv6 address to `name`.
    pub fn aaaa(mut self, name: &str, addr: Ipv6Addr) -> Self {
        self.nodes.entry(zone_key(name)).or_default().aaaa.push(addr);
        self
    }

    /// Makes `name` an alias of `target`; questions for `name` are answered with the CNAME followed by
    /// whatever `target` has.
    pub fn cname(mut self, name: &str, target: &str) -> Self {
        self.nodes.entry(zone_key(name)).or_default().cname = Some(zone_key(target));
        self
    }

    /// Sets the TTL of every record in answers.
    pub fn ttl(mut self, secs: u32) -> Self {
        self.ttl = Some(secs);
        self
    }

    /// Over UDP, answers questions for `name` with TC=1 and no records, so clients must retry over TCP.
    pub fn truncate_udp(mut self, name: &str) -> Self {
        self.truncate_udp.insert(zone_key(name));
        self
    }

    /// Answers questions for `name` with SERVFAIL.
    pub fn servfail(mut self, name: &str) -> Self {
        self.servfail.insert(zone_key(name));
        self
    }

    /// Never answers questions for `name` (they are still counted).
    pub fn silent(mut self, name: &str) -> Self {
        self.silent.insert(zone_key(name));
        self
    }

    /// The response to `request`, or `None` when the server must stay silent.
    fn respond(&self, request: &Message, over_udp: bool) -> Option<Message> {
        let mut response = Message::response(request.metadata.id, OpCode::Query);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.authoritative = true;
        response.add_queries(request.queries.iter().cloned());
        let Some(query) = request.queries.first() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return Some(response);
        };
        let key = zone_key(&query.name().to_ascii());
        if self.silent.contains(&key) {
            return None;
        }
        if self.servfail.contains(&key) {
            response.metadata.response_code = ResponseCode::ServFail;
            return Some(response);
        }
        if over_udp && self.truncate_udp.contains(&key) {
            response.metadata.truncation = true;
            return Some(response);
        }
        let ttl = self.ttl.unwrap_or(DEFAULT_TTL_SECS);
        let mut owner = query.name().clone();
        let mut current = key;
        for _ in 0..MAX_CNAME_HOPS {
            let Some(node) = self.nodes.get(&current) else {
                response.metadata.response_code = ResponseCode::NXDomain;
                return Some(response);
            };
            if let Some(target) = &node.cname {
                let target_name = Name::from_ascii(format!("{target}.")).ok()?;
                let cname = RData::CNAME(CNAME(target_name.clone()));
                response.add_answer(Record::from_rdata(owner, ttl, cname));
                owner = target_name;
                current = target.clone();
                continue;
            }
            match query.query_type() {
                RecordType::A => {
                    for addr in &node.a {
                        response.add_answer(Record::from_rdata(owner.clone(), ttl, RData::A(A(*addr))));
                    }
                }
                RecordType::AAAA => {
                    for addr in &node.aaaa {
                        let rdata = RData::AAAA(AAAA(*addr));
                        response.add_answer(Record::from_rdata(owner.clone(), ttl, rdata));
                    }
                }
                _ => {}
            }
            return Some(response);
        }
        response.metadata.response_code = ResponseCode::ServFail;
        Some(response)
    }
}

/// Lowercase, without a trailing dot: the form names are stored and counted under.
fn zone_key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Questions received, shared between the server threads and the test.
#[derive(Debug, Default)]
struct QueryLog {
    total: usize,
    by_question: HashMap<(String, String), usize>,
}

struct Shared {
    zone: Zone,
    log: Mutex<QueryLog>,
    shutdown: AtomicBool,
}

impl Shared {
    /// Decodes one request, records it, and encodes the response (if any).
    fn handle(&self, request_bytes: &[u8], over_udp: bool) -> Option<Vec<u8>> {
        let request = Message::from_vec(request_bytes).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        {
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            log.total += 1;
            if let Some(query) = request.queries.first() {
                let question = (zone_key(&query.name().to_ascii()), query.query_type().to_string());
                *log.by_question.entry(question).or_default() += 1;
            }
        }
        self.zone.respond(&request, over_udp)?.to_vec().ok()
    }
}

/// A running server; stops and joins its threads on drop.
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Serves `zone` over UDP and TCP on `bind` (port 0 picks a free port, the same for both).
    pub fn start(bind: SocketAddr, zone: Zone) -> io::Result<DnsServer> {
        let udp = UdpSocket::bind(bind)?;
        let addr = udp.local_addr()?;
        let tcp = TcpListener::bind(addr)?;
        udp.set_read_timeout(Some(POLL_INTERVAL))?;
        // Non-blocking accept so the thread can notice shutdown between connections.
        tcp.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            zone,
            log: Mutex::default(),
            shutdown: AtomicBool::new(false),
        });
        let udp_shared = Arc::clone(&shared);
        let tcp_shared = Arc::clone(&shared);
        let threads = vec![
            std::thread::Builder::new()
                .name("testkit-dns-udp".into())
                .spawn(move || serve_udp(&udp, &udp_shared))?,
            std::thread::Builder::new()
                .name("testkit-dns-tcp".into())
                .spawn(move || serve_tcp(&tcp, &tcp_shared))?,
        ];
        Ok(DnsServer { addr, shared, threads })
    }

    /// Where the server listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Questions received so far, UDP and TCP together, including those left unanswered.
    pub fn queries(&self) -> usize {
        self.shared.log.lock().unwrap_or_else(PoisonError::into_inner).total
    }

    /// Questions received for `name` (case-insensitive, trailing dot optional) and record type `rtype`
    /// (`"A"`, `"AAAA"`, ...).
    pub fn queries_for(&self, name: &str, rtype: &str) -> usize {
        let log = self.shared.log.lock().unwrap_or_else(PoisonError::into_inner);
        let question = (zone_key(name), rtype.to_ascii_uppercase());
        log.by_question.get(&question).copied().unwrap_or(0)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            // A panicking server thread already failed the test through its output; nothing to add here.
            let _ = thread.join();
        }
    }
}

fn serve_udp(socket: &UdpSocket, shared: &Shared) {
    let mut buf = vec![0u8; MAX_MESSAGE_BYTES];
    while !shared.shutdown.load(Ordering::SeqCst) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            // Read timeout: time to look at the shutdown flag again.
            Err(_) => continue,
        };
        if let Some(response) = shared.handle(&buf[..len], true) {
            // A lost response is what a client must cope with anyway.
            let _ = socket.send_to(&response, peer);
        }
    }
}

fn serve_tcp(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut connections = Vec::new();
    while !shared.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                // A thread per connection, so a client that never sends cannot block the others.
                let shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("testkit-dns-tcp-conn".into())
                    // Errors just end that connection, as a real server would.
                    .spawn(move || drop(serve_tcp_connection(stream, &shared)));
                connections.extend(spawned.ok());
            }
            Err(_) => std::thread::sleep(POLL_INTERVAL / 5),
        }
        connections.retain(|c: &JoinHandle<()>| !c.is_finished());
    }
    for connection in connections {
        // Connection threads notice the shutdown flag within one poll interval.
        let _ = connection.join();
    }
}

/// Answers length-prefixed messages on one connection until the client closes it.
fn serve_tcp_connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL_INTERVAL))?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while !shared.shutdown.load(Ordering::SeqCst) {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        }
        while received.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([received[0], received[1]]));
            if received.len() < 2 + len {
                break;
            }
            let request: Vec<u8> = received.drain(..2 + len).skip(2).collect();
            if let Some(response) = shared.handle(&request, false) {
                let len = u16::try_from(response.len()).map_err(|_| io::ErrorKind::InvalidData)?;
                stream.write_all(&len.to_be_bytes())?;
                stream.write_all(&response)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn ask(server: &DnsServer, name: &str, rtype: RecordType) -> Message {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut request = Message::new(0x1234, MessageType::Query, OpCode::Query);
        request.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        socket.send_to(&request.to_vec().unwrap(), server.addr()).unwrap();
        let mut buf = [0u8; 1500];
        let (len, _) = socket.recv_from(&mut buf).unwrap();
        Message::from_vec(&buf[..len]).unwrap()
    }

    #[test]
    fn answers_a_through_cname_and_counts_questions() {
        let zone = Zone::default()
            .cname("www.example.test", "example.test")
            .a("Example.test", Ipv4Addr::new(192, 0, 2, 7));
        let server = DnsServer::start("127.0.0.61:0".parse().unwrap(), zone).unwrap();
        let response = ask(&server, "WWW.example.test.", RecordType::A);
        assert_eq!(response.metadata.id, 0x1234);
        assert_eq!(response.answers.len(), 2);
        assert_eq!(response.answers[1].data, RData::A(A(Ipv4Addr::new(192, 0, 2, 7))));
        assert_eq!(server.queries(), 1);
        assert_eq!(server.queries_for("www.example.test", "A"), 1);
    }

    #[test]
    fn unknown_name_is_nxdomain() {
        let server = DnsServer::start("127.0.0.62:0".parse().unwrap(), Zone::default()).unwrap();
        let response = ask(&server, "missing.test.", RecordType::AAAA);
        assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn truncated_over_udp_answers_over_tcp() {
        let zone = Zone::default()
            .truncate_udp("big.test")
            .a("big.test", Ipv4Addr::new(192, 0, 2, 9));
        let server = DnsServer::start("127.0.0.63:0".parse().unwrap(), zone).unwrap();
        let udp = ask(&server, "big.test.", RecordType::A);
        assert!(udp.metadata.truncation);
        assert!(udp.answers.is_empty());

        let mut request = Message::new(7, MessageType::Query, OpCode::Query);
        request.add_query(Query::query(Name::from_ascii("big.test.").unwrap(), RecordType::A));
        let bytes = request.to_vec().unwrap();
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
        stream.write_all(&bytes).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut body).unwrap();
        let tcp = Message::from_vec(&body).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 1);
        assert_eq!(server.queries_for("big.test", "a"), 2);
    }
}
