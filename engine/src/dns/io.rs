//! The resolver's sockets, driven by the engine's mio loop: one unconnected UDP socket per address
//! family of the upstreams, and short-lived TCP connections for answers too big for UDP. Every socket is
//! non-blocking and every readiness event is drained until `WouldBlock` (mio is edge-triggered); the
//! bytes go to and come from the sans-IO [`Resolver`].

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};

use super::resolver::{Outgoing, Resolver, TcpAction, Transport};
use super::DnsError;
use std::time::Instant;

/// Token offsets inside the span the `Dns` owns.
const UDP_V4_OFFSET: usize = 0;
const UDP_V6_OFFSET: usize = 1;
const FIRST_TCP_OFFSET: usize = 2;
/// Largest datagram accepted. We advertise a smaller EDNS payload, but a server that ignores it should
/// not have its answer cut in half.
const MAX_DATAGRAM_BYTES: usize = 4096;
/// UDP datagrams kept while the socket buffer is full. Beyond this the kernel is far behind; dropping
/// is safe because every question has a retransmit timer.
const MAX_QUEUED_DATAGRAMS: usize = 4096;
/// DNS over TCP prefixes each message with its length (RFC 1035 §4.2.2).
const TCP_LENGTH_PREFIX_BYTES: usize = 2;

/// Sockets of one `Dns`.
#[derive(Debug)]
pub(crate) struct Io {
    first_token: usize,
    /// Only datagrams from these addresses are looked at; anything else is noise or an attack.
    servers: Vec<SocketAddr>,
    udp_v4: Option<UdpSocket>,
    udp_v6: Option<UdpSocket>,
    /// Datagrams that met a full socket buffer, sent again when the socket is writable.
    queued: VecDeque<Outgoing>,
    recv_buf: Box<[u8]>,
    /// TCP connections by slot; slot `i` has token `first_token + FIRST_TCP_OFFSET + i`.
    tcp: Vec<Option<TcpExchange>>,
    free_tcp_slots: Vec<usize>,
    tcp_by_id: HashMap<u16, usize>,
}

/// One question and its answer over one TCP connection.
#[derive(Debug)]
struct TcpExchange {
    id: u16,
    server: SocketAddr,
    stream: TcpStream,
    /// Length prefix and question.
    outgoing: Vec<u8>,
    written: usize,
    incoming: Vec<u8>,
}

/// Where a TCP exchange stands after being driven.
enum TcpProgress {
    Waiting,
    Answered(Vec<u8>),
    Failed(String),
}

impl Io {
    /// Opens the UDP sockets the upstreams need and registers them at `first_token` onwards.
    /// `token_span` bounds the tokens used, so the TCP connection count is `token_span - 2`.
    pub(crate) fn new(
        servers: &[SocketAddr],
        registry: &Registry,
        first_token: usize,
        token_span: usize,
    ) -> Result<Io, DnsError> {
        let udp_v4 = if servers.iter().any(SocketAddr::is_ipv4) {
            let any = SocketAddr::V4(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));
            Some(bind_udp(any, registry, Token(first_token + UDP_V4_OFFSET))?)
        } else {
            None
        };
        let udp_v6 = if servers.iter().any(SocketAddr::is_ipv6) {
            let any = SocketAddr::V6(SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, 0, 0, 0));
            Some(bind_udp(any, registry, Token(first_token + UDP_V6_OFFSET))?)
        } else {
            None
        };
        let tcp_slots = token_span.saturating_sub(FIRST_TCP_OFFSET);
        Ok(Io {
            first_token,
            servers: servers.to_vec(),
            udp_v4,
            udp_v6,
            queued: VecDeque::new(),
            recv_buf: vec![0; MAX_DATAGRAM_BYTES].into_boxed_slice(),
            tcp: (0..tcp_slots).map(|_| None).collect(),
            // Reversed so slots are handed out from the lowest token up, which reads better in traces.
            free_tcp_slots: (0..tcp_slots).rev().collect(),
            tcp_by_id: HashMap::new(),
        })
    }

    /// Handles readiness of one of our tokens.
    pub(crate) fn on_event(
        &mut self,
        registry: &Registry,
        event: &mio::event::Event,
        resolver: &mut Resolver,
        now: Instant,
    ) {
        let offset = event.token().0.wrapping_sub(self.first_token);
        match offset {
            UDP_V4_OFFSET | UDP_V6_OFFSET => {
                if event.is_writable() {
                    self.send_queued(resolver, now);
                }
                if event.is_readable() {
                    self.receive_udp(offset, resolver, now);
                }
            }
            _ => self.drive_tcp(registry, offset - FIRST_TCP_OFFSET, resolver, now),
        }
    }

    /// Sends the resolver's pending UDP datagrams. Needs no registry, so `lookup` can call it.
    pub(crate) fn flush_udp(&mut self, resolver: &mut Resolver, now: Instant) {
        while let Some(outgoing) = resolver.poll_udp() {
            self.send_udp(outgoing, resolver, now);
        }
    }

    /// Carries out everything the resolver asked for, until it asks for nothing more (a failed send
    /// makes it try the next server, which is more work).
    pub(crate) fn flush(&mut self, registry: &Registry, resolver: &mut Resolver, now: Instant) {
        loop {
            self.flush_udp(resolver, now);
            let Some(action) = resolver.poll_tcp() else { return };
            match action {
                TcpAction::Open(outgoing) => self.open_tcp(registry, outgoing, resolver, now),
                TcpAction::Close(id) => self.close_tcp(registry, id),
            }
        }
    }

    fn socket_for(&self, server: SocketAddr) -> Option<&UdpSocket> {
        if server.is_ipv4() {
            self.udp_v4.as_ref()
        } else {
            self.udp_v6.as_ref()
        }
    }

    fn send_udp(&mut self, outgoing: Outgoing, resolver: &mut Resolver, now: Instant) {
        // Keep order behind datagrams already waiting for buffer space.
        if !self.queued.is_empty() {
            self.queue(outgoing);
            return;
        }
        let Some(socket) = self.socket_for(outgoing.server) else {
            // Cannot happen: sockets exist for every upstream family. Fail the attempt, not the process.
            resolver.on_transport_error(outgoing.id, Transport::Udp, "no socket for address family", now);
            return;
        };
        match socket.send_to(&outgoing.bytes, outgoing.server) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.queue(outgoing),
            Err(e) => {
                let detail = format!("{}: send failed: {e}", outgoing.server);
                resolver.on_transport_error(outgoing.id, Transport::Udp, &detail, now);
            }
        }
    }

    fn queue(&mut self, outgoing: Outgoing) {
        if self.queued.len() >= MAX_QUEUED_DATAGRAMS {
            tracing::debug!(
                id = outgoing.id,
                "dns: UDP send queue full, datagram left to its retransmit timer"
            );
            return;
        }
        self.queued.push_back(outgoing);
    }

    fn send_queued(&mut self, resolver: &mut Resolver, now: Instant) {
        while let Some(outgoing) = self.queued.pop_front() {
            let Some(socket) = self.socket_for(outgoing.server) else {
                continue;
            };
            match socket.send_to(&outgoing.bytes, outgoing.server) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.queued.push_front(outgoing);
                    return;
                }
                Err(e) => {
                    let detail = format!("{}: send failed: {e}", outgoing.server);
                    resolver.on_transport_error(outgoing.id, Transport::Udp, &detail, now);
                }
            }
        }
    }

    fn receive_udp(&mut self, offset: usize, resolver: &mut Resolver, now: Instant) {
        let socket = if offset == UDP_V4_OFFSET {
            self.udp_v4.as_ref()
        } else {
            self.udp_v6.as_ref()
        };
        let Some(socket) = socket else { return };
        loop {
            match socket.recv_from(&mut self.recv_buf) {
                Ok((len, from)) => {
                    if self.servers.contains(&from) {
                        resolver.on_message(from, &self.recv_buf[..len], Transport::Udp, now);
                    } else {
                        tracing::debug!(%from, len, "dns: datagram from a non-upstream address dropped");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP errors surface here on some systems; the retransmit timer covers the lost answer.
                Err(e) => {
                    tracing::debug!(error = %e, "dns: UDP receive error");
                    return;
                }
            }
        }
    }

    fn open_tcp(&mut self, registry: &Registry, outgoing: Outgoing, resolver: &mut Resolver, now: Instant) {
        // A question has at most one connection; a stale one would only deliver the same answer late.
        self.close_tcp(registry, outgoing.id);
        let Some(slot) = self.free_tcp_slots.pop() else {
            resolver.on_transport_error(outgoing.id, Transport::Tcp, "too many DNS TCP connections", now);
            return;
        };
        match self.connect(registry, slot, &outgoing) {
            Ok(exchange) => {
                self.tcp[slot] = Some(exchange);
                self.tcp_by_id.insert(outgoing.id, slot);
            }
            Err(e) => {
                self.free_tcp_slots.push(slot);
                let detail = format!("{}: TCP connect failed: {e}", outgoing.server);
                resolver.on_transport_error(outgoing.id, Transport::Tcp, &detail, now);
            }
        }
    }

    fn connect(&self, registry: &Registry, slot: usize, outgoing: &Outgoing) -> io::Result<TcpExchange> {
        let length = u16::try_from(outgoing.bytes.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let mut framed = Vec::with_capacity(TCP_LENGTH_PREFIX_BYTES + outgoing.bytes.len());
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&outgoing.bytes);
        // mio's connect is non-blocking: completion (or failure) is reported as writability.
        let mut stream = TcpStream::connect(outgoing.server)?;
        let token = Token(self.first_token + FIRST_TCP_OFFSET + slot);
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(TcpExchange {
            id: outgoing.id,
            server: outgoing.server,
            stream,
            outgoing: framed,
            written: 0,
            incoming: Vec::new(),
        })
    }

    fn close_tcp(&mut self, registry: &Registry, id: u16) {
        let Some(slot) = self.tcp_by_id.remove(&id) else { return };
        if let Some(mut exchange) = self.tcp.get_mut(slot).and_then(Option::take) {
            // Deregistering an fd that is about to be closed cannot usefully fail; closing removes it anyway.
            let _ = registry.deregister(&mut exchange.stream);
            self.free_tcp_slots.push(slot);
        }
    }

    fn drive_tcp(&mut self, registry: &Registry, slot: usize, resolver: &mut Resolver, now: Instant) {
        // Events for a connection closed earlier in the same batch find an empty slot.
        let Some(exchange) = self.tcp.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let (id, server) = (exchange.id, exchange.server);
        match exchange.advance() {
            TcpProgress::Waiting => {}
            TcpProgress::Answered(message) => {
                self.close_tcp(registry, id);
                resolver.on_message(server, &message, Transport::Tcp, now);
            }
            TcpProgress::Failed(detail) => {
                self.close_tcp(registry, id);
                resolver.on_transport_error(id, Transport::Tcp, &format!("{server}: {detail}"), now);
            }
        }
    }
}

impl TcpExchange {
    /// Writes what it can, reads what there is. Both directions are tried on every event: with
    /// edge-triggered readiness, skipping one could leave it waiting for an edge that never comes.
    fn advance(&mut self) -> TcpProgress {
        match self.stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return TcpProgress::Failed(e.to_string()),
        }
        while self.written < self.outgoing.len() {
            match self.stream.write(&self.outgoing[self.written..]) {
                Ok(0) => return TcpProgress::Failed("connection closed while sending".to_string()),
                Ok(n) => self.written += n,
                // Not connected yet: the connect completion will come as another writable event.
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return TcpProgress::Failed(e.to_string()),
            }
        }
        let mut chunk = [0u8; MAX_DATAGRAM_BYTES];
        loop {
            if let Some(message) = self.complete_message() {
                return TcpProgress::Answered(message);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return TcpProgress::Failed("connection closed before a full answer".to_string()),
                Ok(n) => self.incoming.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected) => {
                    return TcpProgress::Waiting;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return TcpProgress::Failed(e.to_string()),
            }
        }
    }

    /// The first length-prefixed message, once all of it has arrived.
    fn complete_message(&self) -> Option<Vec<u8>> {
        let prefix = self.incoming.get(..TCP_LENGTH_PREFIX_BYTES)?;
        let length = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        let body = self
            .incoming
            .get(TCP_LENGTH_PREFIX_BYTES..TCP_LENGTH_PREFIX_BYTES + length)?;
        Some(body.to_vec())
    }
}

fn bind_udp(addr: SocketAddr, registry: &Registry, token: Token) -> Result<UdpSocket, DnsError> {
    let io_error = |e: io::Error| DnsError::Io {
        detail: format!("UDP socket on {addr}: {e}"),
    };
    let mut socket = UdpSocket::bind(addr).map_err(io_error)?;
    // Writable interest too: it is how a full send buffer tells us it has room again.
    registry
        .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
        .map_err(io_error)?;
    Ok(socket)
}
