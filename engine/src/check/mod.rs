//! One check as an explicit state machine: `Start → Resolving → Connecting → Handshaking → Exchanging →
//! Done`, with redirects looping back to `Start` for the next hop.
//!
//! The machine owns no socket and reads no clock. The reactor tells it what happened (resolved, connected,
//! readable/writable, deadline) with the current `Instant`, hands it the socket as any `Read + Write` for the
//! duration of the call, and acts on the [`Step`] it returns. Unit tests drive it with byte strings and a
//! fake clock.

mod outcome;
mod transport;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use url::{Host, Url};

use crate::config::EngineConfig;
use crate::dns::{Addrs, DnsError};
use crate::http::{self, HeadError};
use crate::result::{CheckResult, ErrorClass, Timings, Verdict};
use outcome::Failure;
use transport::{Received, TransportError};

/// What the reactor must do next for a check.
#[derive(Debug)]
pub(crate) enum Step {
    /// Look up [`Check::host`] and report with [`Check::on_resolved`].
    Resolve,
    /// A redirect was taken: drop the current socket and call [`Check::start`] for the next hop.
    NextHop,
    /// Open a TCP connection to this address (dropping any previous socket), then call
    /// [`Check::on_connect_begun`].
    Connect(SocketAddr),
    /// Nothing to do until the next socket event or the deadline.
    Wait,
    /// The check is over.
    Finished(CheckResult),
}

/// Shared, per-thread things a check borrows while it runs.
pub(crate) struct Context<'a> {
    pub config: &'a EngineConfig,
    pub tls: &'a Arc<ClientConfig>,
    /// Read buffer, `max_response_head_bytes` long, shared by every check of the thread.
    pub scratch: &'a mut [u8],
    /// Request framing buffer shared by every check of the thread.
    pub request: &'a mut Vec<u8>,
}

enum State {
    /// A hop is about to begin.
    Start,
    Resolving {
        since: Instant,
    },
    Connecting {
        addrs: Addrs,
        next: usize,
        since: Instant,
        attempt_deadline: Instant,
    },
    Handshaking {
        tls: Box<ClientConnection>,
        since: Instant,
        deadline: Instant,
    },
    Exchanging(Exchange),
    Done,
}

struct Exchange {
    tls: Option<Box<ClientConnection>>,
    /// Request bytes a plain socket has not taken yet (only allocated in the rare partial-write case).
    unsent: Vec<u8>,
    /// When the request was handed to the socket; `ttfb` counts from here.
    sent_at: Instant,
    /// Response head bytes gathered across reads (only allocated when a head spans reads).
    head: Vec<u8>,
    got_first_byte: bool,
}

/// One check in flight.
pub(crate) struct Check {
    id: u64,
    submitted: String,
    url: Url,
    state: State,
    started: Instant,
    whole_deadline: Instant,
    redirects: u8,
    timings: Timings,
}

impl Check {
    /// Parses the URL and starts the clock. An invalid URL gives the finished result instead.
    pub(crate) fn new(
        id: u64,
        submitted: String,
        now: Instant,
        config: &EngineConfig,
    ) -> Result<Check, Box<CheckResult>> {
        let url = match parse_check_url(&submitted) {
            Ok(url) => url,
            Err(reason) => {
                return Err(Box::new(outcome::failed_result(
                    id,
                    submitted,
                    Failure::new(ErrorClass::InvalidUrl, reason),
                    0,
                    Duration::ZERO,
                    Timings::default(),
                    0,
                )))
            }
        };
        Ok(Check {
            id,
            submitted,
            url,
            state: State::Start,
            started: now,
            whole_deadline: now + config.check_timeout,
            redirects: 0,
            timings: Timings::default(),
        })
    }

    /// The host name of the current hop (for DNS).
    pub(crate) fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port of the current hop.
    pub(crate) fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// The earliest instant at which [`Check::on_deadline`] has something to do.
    pub(crate) fn deadline(&self) -> Instant {
        let phase = match &self.state {
            State::Connecting { attempt_deadline, .. } => *attempt_deadline,
            State::Handshaking { deadline, .. } => *deadline,
            _ => self.whole_deadline,
        };
        phase.min(self.whole_deadline)
    }

    /// Begins the current hop: IP literals go straight to connecting, names to the resolver.
    pub(crate) fn start(&mut self, now: Instant, ctx: &mut Context<'_>) -> Step {
        let literal = match self.url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        self.timings = Timings::default();
        match literal {
            Some(ip) => {
                let addrs: Addrs = Arc::from([ip].as_slice());
                self.begin_connecting(addrs, now, ctx)
            }
            None => {
                self.state = State::Resolving { since: now };
                Step::Resolve
            }
        }
    }

    /// The resolver answered.
    pub(crate) fn on_resolved(&mut self, answer: Result<Addrs, DnsError>, now: Instant, ctx: &mut Context<'_>) -> Step {
        let since = match self.state {
            State::Resolving { since } => since,
            _ => return Step::Wait,
        };
        self.timings.dns = Some(now.saturating_duration_since(since));
        match answer {
            Ok(addrs) if !addrs.is_empty() => self.begin_connecting(addrs, now, ctx),
            Ok(_) => self.fail(
                Failure::new(ErrorClass::Dns, format!("{} has no addresses", self.host())),
                now,
            ),
            Err(e) => {
                let class = if e.is_unavailable() {
                    ErrorClass::DnsUnavailable
                } else {
                    ErrorClass::Dns
                };
                self.fail(Failure::new(class, e.to_string()), now)
            }
        }
    }

    fn begin_connecting(&mut self, addrs: Addrs, now: Instant, ctx: &mut Context<'_>) -> Step {
        self.state = State::Connecting {
            addrs,
            next: 0,
            since: now,
            attempt_deadline: self.whole_deadline,
        };
        self.next_address(now, ctx, None)
    }

    /// Picks the next permitted address, or fails with the last connect error.
    fn next_address(&mut self, now: Instant, ctx: &mut Context<'_>, last_error: Option<Failure>) -> Step {
        let port = self.port();
        let State::Connecting { addrs, next, .. } = &mut self.state else {
            return Step::Wait;
        };
        let mut forbidden = None;
        while let Some(ip) = addrs.get(*next).copied() {
            *next += 1;
            if ctx.config.address_policy.permits(ip) {
                return Step::Connect(SocketAddr::new(ip, port));
            }
            forbidden = Some(ip);
        }
        let failure = match (last_error, forbidden) {
            (Some(e), _) => e,
            (None, Some(ip)) => Failure::new(ErrorClass::Forbidden, format!("{ip} is not a permitted destination")),
            (None, None) => Failure::new(ErrorClass::Dns, "no addresses to connect to".to_string()),
        };
        self.fail(failure, now)
    }

    /// The reactor opened the socket for the address of the last `Connect` step: start that attempt's clock.
    /// Each address gets an equal share of the connect limit so a black-holed first address leaves time
    /// for the next one.
    pub(crate) fn on_connect_begun(&mut self, now: Instant, config: &EngineConfig) {
        if let State::Connecting {
            addrs,
            next,
            attempt_deadline,
            ..
        } = &mut self.state
        {
            let remaining = (addrs.len() + 1).saturating_sub(*next).max(1) as u32;
            *attempt_deadline = now + config.connect_timeout / remaining;
        }
    }

    /// The connect attempt failed; try the next address.
    pub(crate) fn on_connect_failed(&mut self, error: std::io::Error, now: Instant, ctx: &mut Context<'_>) -> Step {
        let failure = Failure::connect(&error, self.current_addr_hint());
        self.next_address(now, ctx, Some(failure))
    }

    fn current_addr_hint(&self) -> String {
        match &self.state {
            State::Connecting { addrs, next, .. } => match next.checked_sub(1).and_then(|i| addrs.get(i)) {
                Some(ip) => SocketAddr::new(*ip, self.port()).to_string(),
                None => self.host().to_string(),
            },
            _ => self.host().to_string(),
        }
    }

    /// The TCP connection is up: start TLS or send the request.
    pub(crate) fn on_connected<S: Read + Write>(&mut self, io: &mut S, now: Instant, ctx: &mut Context<'_>) -> Step {
        let since = match &self.state {
            State::Connecting { since, .. } => *since,
            _ => return Step::Wait,
        };
        self.timings.connect = Some(now.saturating_duration_since(since));
        if self.url.scheme() == "https" {
            let name = match server_name(&self.url) {
                Ok(name) => name,
                Err(reason) => return self.fail(Failure::new(ErrorClass::Tls, reason), now),
            };
            match ClientConnection::new(Arc::clone(ctx.tls), name) {
                Ok(tls) => {
                    let deadline = now + ctx.config.tls_timeout;
                    self.state = State::Handshaking {
                        tls: Box::new(tls),
                        since: now,
                        deadline,
                    };
                    self.on_io(io, now, ctx)
                }
                Err(e) => self.fail(Failure::new(ErrorClass::Tls, e.to_string()), now),
            }
        } else {
            self.begin_exchange(None, io, now, ctx)
        }
    }

    /// The socket is readable or writable.
    pub(crate) fn on_io<S: Read + Write>(&mut self, io: &mut S, now: Instant, ctx: &mut Context<'_>) -> Step {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Handshaking {
                mut tls,
                since,
                deadline,
            } => match handshake(&mut tls, io) {
                Ok(true) => {
                    self.timings.tls = Some(now.saturating_duration_since(since));
                    self.begin_exchange(Some(tls), io, now, ctx)
                }
                Ok(false) => {
                    self.state = State::Handshaking { tls, since, deadline };
                    Step::Wait
                }
                Err(e) => self.fail(Failure::transport(e, "during the TLS handshake"), now),
            },
            State::Exchanging(exchange) => self.exchange(exchange, io, now, ctx),
            other => {
                self.state = other;
                Step::Wait
            }
        }
    }

    fn begin_exchange<S: Read + Write>(
        &mut self,
        mut tls: Option<Box<ClientConnection>>,
        io: &mut S,
        now: Instant,
        ctx: &mut Context<'_>,
    ) -> Step {
        ctx.request.clear();
        http::write_head_request(&self.url, &ctx.config.user_agent, ctx.request);
        let mut unsent = Vec::new();
        match tls.as_deref_mut() {
            Some(tls) => {
                if let Err(e) = tls.writer().write_all(ctx.request) {
                    return self.fail(Failure::new(ErrorClass::Tls, e.to_string()), now);
                }
            }
            None => {
                let mut sent = 0;
                if let Err(e) = transport::send_plain(io, ctx.request, &mut sent) {
                    return self.fail(Failure::transport(e, "while sending the request"), now);
                }
                unsent.extend_from_slice(&ctx.request[sent..]);
            }
        }
        let exchange = Exchange {
            tls,
            unsent,
            sent_at: now,
            head: Vec::new(),
            got_first_byte: false,
        };
        self.exchange(exchange, io, now, ctx)
    }

    fn exchange<S: Read + Write>(&mut self, mut ex: Exchange, io: &mut S, now: Instant, ctx: &mut Context<'_>) -> Step {
        let flushed = match ex.tls.as_deref_mut() {
            Some(tls) => transport::flush_tls(tls, io),
            None => {
                let mut sent = 0;
                let done = transport::send_plain(io, &ex.unsent, &mut sent);
                ex.unsent.drain(..sent);
                done
            }
        };
        if let Err(e) = flushed {
            return self.fail(Failure::transport(e, "while sending the request"), now);
        }
        loop {
            let received = match transport::receive(ex.tls.as_deref_mut(), io, ctx.scratch) {
                Ok(r) => r,
                Err(e) => return self.fail(Failure::transport(e, "while reading the response"), now),
            };
            match received {
                Received::WouldBlock => {
                    self.state = State::Exchanging(ex);
                    return Step::Wait;
                }
                Received::Eof => {
                    let what = if ex.head.is_empty() {
                        "without a response"
                    } else {
                        "in the middle of the response head"
                    };
                    return self.fail(Failure::protocol(format!("connection closed {what}")), now);
                }
                Received::Data(0) => continue,
                Received::Data(n) => {
                    if !ex.got_first_byte {
                        ex.got_first_byte = true;
                        self.timings.ttfb = Some(now.saturating_duration_since(ex.sent_at));
                    }
                    // The common case: the whole head arrives in one read; parse it in place.
                    let parsed = if ex.head.is_empty() {
                        self.on_head_bytes(&ctx.scratch[..n], now, ctx.config)
                    } else {
                        None
                    };
                    if let Some(step) = parsed {
                        return step;
                    }
                    if ex.head.is_empty() || ex.head.len() < ctx.config.max_response_head_bytes {
                        if ex.head.is_empty() {
                            ex.head.reserve(n.max(1024));
                        }
                        ex.head.extend_from_slice(&ctx.scratch[..n]);
                        if ex.head.len() > n {
                            if let Some(step) = self.on_head_bytes(&ex.head, now, ctx.config) {
                                return step;
                            }
                        }
                    }
                    if ex.head.len() >= ctx.config.max_response_head_bytes {
                        return self.on_oversized_head(&ex.head, now, ctx.config);
                    }
                }
            }
        }
    }

    /// Tries to finish on the bytes gathered so far; `None` when more bytes are needed.
    fn on_head_bytes(&mut self, head: &[u8], now: Instant, config: &EngineConfig) -> Option<Step> {
        match http::parse_response_head(head) {
            Err(HeadError::Partial) => None,
            Err(HeadError::Malformed(why)) => Some(self.fail(Failure::bad_status_line(why), now)),
            Err(HeadError::TooLarge { code }) => Some(self.on_status(code, None, head, now, config)),
            Ok(parsed) => Some(self.on_status(parsed.code, parsed.location, head, now, config)),
        }
    }

    fn on_oversized_head(&mut self, head: &[u8], now: Instant, config: &EngineConfig) -> Step {
        match http::partial_status_code(head) {
            Some(code) => self.on_status(code, None, head, now, config),
            None => self.fail(
                Failure::bad_status_line("no status line in the first bytes of an oversized response"),
                now,
            ),
        }
    }

    /// A final status code arrived: finish, or follow the redirect.
    fn on_status(
        &mut self,
        code: u16,
        location: Option<std::ops::Range<usize>>,
        head: &[u8],
        now: Instant,
        config: &EngineConfig,
    ) -> Step {
        let is_redirect = (301..=399).contains(&code);
        if !is_redirect || self.redirects >= config.max_redirects {
            // At the redirect limit the last 3xx stands and counts as up (the original's rule).
            return self.succeed(code, now);
        }
        let Some(range) = location else {
            return self.fail_with_code(
                Failure::bad_redirect(format!("{code} redirect without a Location header")),
                code,
                now,
            );
        };
        match http::resolve_location(&self.url, &head[range]) {
            Ok(next) => {
                self.url = next;
                self.redirects += 1;
                self.state = State::Start;
                Step::NextHop
            }
            Err(e) => self.fail_with_code(Failure::bad_redirect(e.to_string()), code, now),
        }
    }

    /// The deadline from [`Check::deadline`] passed.
    pub(crate) fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_>) -> Step {
        if now >= self.whole_deadline {
            let phase = self.phase_name();
            let limit = ctx.config.check_timeout;
            return self.fail(
                Failure::timeout(format!("no answer within {limit:?} (while {phase})")),
                now,
            );
        }
        match &self.state {
            State::Connecting { attempt_deadline, .. } if now >= *attempt_deadline => {
                let addr = self.current_addr_hint();
                let failure = Failure::timeout(format!("connect to {addr} timed out"));
                self.next_address(now, ctx, Some(failure))
            }
            State::Handshaking { deadline, .. } if now >= *deadline => {
                let limit = ctx.config.tls_timeout;
                self.fail(
                    Failure::timeout(format!("TLS handshake took longer than {limit:?}")),
                    now,
                )
            }
            _ => Step::Wait,
        }
    }

    /// The engine is shutting down before this check finished.
    pub(crate) fn abort(&mut self, now: Instant) -> CheckResult {
        self.failed_result(
            Failure::new(ErrorClass::Aborted, "engine shut down".to_string()),
            0,
            now,
        )
    }

    fn phase_name(&self) -> &'static str {
        match self.state {
            State::Start | State::Resolving { .. } => "resolving",
            State::Connecting { .. } => "connecting",
            State::Handshaking { .. } => "in the TLS handshake",
            State::Exchanging(ref ex) if ex.got_first_byte => "reading the response head",
            State::Exchanging(_) => "waiting for the response",
            State::Done => "done",
        }
    }

    fn succeed(&mut self, code: u16, now: Instant) -> Step {
        self.state = State::Done;
        let rtt = now
            .saturating_duration_since(self.started)
            .max(Duration::from_micros(1));
        Step::Finished(CheckResult {
            id: self.id,
            url: std::mem::take(&mut self.submitted),
            verdict: Verdict::from_response(code, rtt),
            code,
            rtt,
            timings: self.timings,
            redirects: self.redirects,
            error: None,
            legacy_error_code: None,
            detail: String::new(),
        })
    }

    fn fail(&mut self, failure: Failure, now: Instant) -> Step {
        self.fail_with_code(failure, 0, now)
    }

    fn fail_with_code(&mut self, failure: Failure, code: u16, now: Instant) -> Step {
        Step::Finished(self.failed_result(failure, code, now))
    }

    fn failed_result(&mut self, failure: Failure, code: u16, now: Instant) -> CheckResult {
        self.state = State::Done;
        let failure = failure.on_hop(self.redirects);
        outcome::failed_result(
            self.id,
            std::mem::take(&mut self.submitted),
            failure,
            code,
            now.saturating_duration_since(self.started),
            self.timings,
            self.redirects,
        )
    }
}

/// Drives the handshake as far as the socket allows. `Ok(true)` once it is complete.
fn handshake<S: Read + Write>(tls: &mut ClientConnection, io: &mut S) -> Result<bool, TransportError> {
    loop {
        if !transport::flush_tls(tls, io)? {
            return Ok(false);
        }
        if !tls.is_handshaking() {
            return Ok(true);
        }
        match transport::read_tls(tls, io)? {
            Received::Data(_) => continue,
            Received::WouldBlock => return Ok(false),
            Received::Eof => {
                return Err(TransportError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                )))
            }
        }
    }
}

fn server_name(url: &Url) -> Result<ServerName<'static>, String> {
    match url.host() {
        Some(Host::Domain(d)) => {
            ServerName::try_from(d.to_string()).map_err(|e| format!("invalid TLS server name {d:?}: {e}"))
        }
        Some(Host::Ipv4(ip)) => Ok(ServerName::IpAddress(IpAddr::V4(ip).into())),
        Some(Host::Ipv6(ip)) => Ok(ServerName::IpAddress(IpAddr::V6(ip).into())),
        None => Err("URL has no host".to_string()),
    }
}

/// Parses a URL the way the engine will check it: http or https, with a host. The error says what is wrong.
pub fn parse_check_url(input: &str) -> Result<Url, String> {
    let url = Url::parse(input.trim()).map_err(|e| format!("{e}"))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "unsupported scheme {other:?} (only http and https are checked)"
            ))
        }
    }
    match url.host() {
        Some(Host::Domain("")) | None => Err("URL has no host".to_string()),
        _ => Ok(url),
    }
}

#[cfg(test)]
mod tests;
