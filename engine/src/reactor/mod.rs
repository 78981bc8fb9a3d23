//! The event loop of one engine thread: a mio `Poll`, a `Slab` of checks indexed by `Token`, the timer
//! wheel for their deadlines and the DNS client. It owns every socket; the checks own only protocol state.
//!
//! Checks arrive on a crossbeam channel and are taken only while the thread is under its in-flight cap, so
//! the channel is the queue and back-pressure costs nothing.

pub(crate) mod fd_limit;
mod ip_gate;
pub(crate) mod timer;

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::ClientConfig;
use slab::Slab;

use crate::check::{Check, Context, Step};
use crate::config::EngineConfig;
use crate::dns::{Addrs, Dns, DnsError};
use crate::engine::{CheckRequest, Counters};
use crate::result::CheckResult;
use ip_gate::IpGate;
use timer::TimerWheel;

/// Wakes the loop when checks are submitted or shutdown is asked.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);
/// The DNS client's tokens start here; slab keys never get near it.
const DNS_FIRST_TOKEN: usize = usize::MAX / 2;
/// Events taken per `poll` call.
const EVENTS_CAPACITY: usize = 1024;
/// Longest sleep with nothing armed, so a shutdown flag is noticed even if a wake-up is lost.
const IDLE_POLL: Duration = Duration::from_secs(1);

struct Slot {
    check: Check,
    generation: u32,
    socket: Option<TcpStream>,
    connected: bool,
    /// The destination whose per-IP slot this check holds.
    holds_ip: Option<IpAddr>,
    /// The deadline currently armed in the wheel.
    armed: Option<Instant>,
}

/// Everything one engine thread needs, built on the caller's thread so setup errors surface from
/// [`crate::Engine::start`].
pub(crate) struct Reactor {
    poll: Poll,
    /// Kept here too: when the engine drops its handle to wake us for shutdown, closing the last handle would
    /// close the eventfd and epoll would forget the wake-up before we collect it.
    _waker: Arc<Waker>,
    events: Events,
    slab: Slab<Slot>,
    next_generation: u32,
    timers: TimerWheel,
    dns: Dns,
    ip_gate: IpGate,
    /// Checks whose connect hit EMFILE; retried as others finish.
    fd_waiters: VecDeque<(usize, u32, SocketAddr)>,
    incoming: Receiver<CheckRequest>,
    results: Sender<CheckResult>,
    config: Arc<EngineConfig>,
    tls: Arc<ClientConfig>,
    scratch: Vec<u8>,
    request: Vec<u8>,
    capacity: usize,
    abort: Arc<AtomicBool>,
    counters: Arc<Counters>,
    dns_done: Vec<(u64, Result<Addrs, DnsError>)>,
    expired: Vec<(usize, u32)>,
    /// Slab keys with socket events from the last poll (reused buffer).
    ready: Vec<usize>,
}

fn waiter_id(key: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | key as u64
}

fn split_waiter(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

/// What [`Reactor::new`] needs from the engine.
pub(crate) struct ReactorSetup {
    pub config: Arc<EngineConfig>,
    pub tls: Arc<ClientConfig>,
    pub capacity: usize,
    pub incoming: Receiver<CheckRequest>,
    pub results: Sender<CheckResult>,
    pub abort: Arc<AtomicBool>,
    pub counters: Arc<Counters>,
}

/// Why a reactor could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReactorError {
    #[error("cannot create the event loop: {0}")]
    Io(#[from] io::Error),
    #[error("cannot set up DNS: {0}")]
    Dns(#[from] DnsError),
}

impl Reactor {
    /// Builds the loop and its waker.
    pub(crate) fn new(setup: ReactorSetup) -> Result<(Reactor, Arc<Waker>), ReactorError> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let dns = Dns::new(&setup.config.dns, poll.registry(), DNS_FIRST_TOKEN)?;
        let reactor = Reactor {
            _waker: Arc::clone(&waker),
            events: Events::with_capacity(EVENTS_CAPACITY),
            slab: Slab::with_capacity(setup.capacity.min(65_536)),
            next_generation: 0,
            timers: TimerWheel::new(Instant::now()),
            dns,
            ip_gate: IpGate::new(setup.config.max_per_ip),
            fd_waiters: VecDeque::new(),
            incoming: setup.incoming,
            results: setup.results,
            scratch: vec![0; setup.config.max_response_head_bytes.max(1024)],
            request: Vec::with_capacity(1024),
            config: setup.config,
            tls: setup.tls,
            capacity: setup.capacity.max(1),
            abort: setup.abort,
            counters: setup.counters,
            dns_done: Vec::new(),
            expired: Vec::new(),
            ready: Vec::with_capacity(EVENTS_CAPACITY),
            poll,
        };
        Ok((reactor, waker))
    }

    /// Runs until the submission channel is closed and every check has finished, or until abort.
    pub(crate) fn run(mut self) {
        let mut draining = false;
        let mut dns_seen = self.dns.stats();
        loop {
            if self.abort.load(Ordering::Relaxed) {
                self.abort_all();
                return;
            }
            let now = Instant::now();
            if !draining {
                draining = self.take_new_checks(now);
            }
            if draining && self.slab.is_empty() {
                return;
            }
            let timeout = self.poll_timeout(now);
            if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "engine poll failed; aborting in-flight checks");
                    self.abort_all();
                    return;
                }
            }
            let now = Instant::now();
            self.dispatch_events(now);
            self.dns.on_timeout(self.poll.registry(), now, &mut self.dns_done);
            self.deliver_dns_answers(now);
            self.fire_timers(now);
            let dns_now = self.dns.stats();
            self.counters.record_dns(dns_seen, dns_now);
            dns_seen = dns_now;
        }
    }

    fn poll_timeout(&self, now: Instant) -> Duration {
        let next = match (self.timers.next_deadline(), self.dns.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match next {
            Some(at) => at.saturating_duration_since(now).min(IDLE_POLL),
            None => IDLE_POLL,
        }
    }

    /// Takes queued checks while under the cap. Returns true once the channel is closed.
    fn take_new_checks(&mut self, now: Instant) -> bool {
        while self.slab.len() < self.capacity {
            match self.incoming.try_recv() {
                Ok(request) => self.begin(request, now),
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return true,
            }
        }
        false
    }

    fn begin(&mut self, request: CheckRequest, now: Instant) {
        match Check::new(request.id, request.url, now, &self.config) {
            Err(result) => self.send(*result),
            Ok(check) => {
                self.next_generation = self.next_generation.wrapping_add(1);
                let generation = self.next_generation;
                let key = self.slab.insert(Slot {
                    check,
                    generation,
                    socket: None,
                    connected: false,
                    holds_ip: None,
                    armed: None,
                });
                self.counters.started();
                let step = self.with_check(key, |check, ctx| check.start(now, ctx));
                self.apply(key, step, now);
            }
        }
    }

    fn dispatch_events(&mut self, now: Instant) {
        // DNS events are handled while iterating; check events are collected first because handling one may
        // touch any slot (and the poll's registry), which cannot happen while `events` is borrowed.
        let mut ready = std::mem::take(&mut self.ready);
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER_TOKEN {
                continue;
            }
            if self.dns.owns(token) {
                self.dns.on_event(self.poll.registry(), event, now, &mut self.dns_done);
            } else {
                ready.push(token.0);
            }
        }
        for key in ready.drain(..) {
            self.on_socket_event(key, now);
        }
        self.ready = ready;
    }

    fn on_socket_event(&mut self, key: usize, now: Instant) {
        let Some(slot) = self.slab.get_mut(key) else { return };
        let Some(socket) = slot.socket.as_ref() else { return };
        if !slot.connected {
            // A non-blocking connect is over when the socket reports an error or has a peer.
            let outcome = match socket.take_error() {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => match socket.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Err(e),
                },
            };
            let step = match outcome {
                Ok(()) => {
                    slot.connected = true;
                    self.with_socket(key, |check, io, ctx| check.on_connected(io, now, ctx))
                }
                Err(e) => self.with_check(key, |check, ctx| check.on_connect_failed(e, now, ctx)),
            };
            self.apply(key, step, now);
            return;
        }
        let step = self.with_socket(key, |check, io, ctx| check.on_io(io, now, ctx));
        self.apply(key, step, now);
    }

    /// The check's slot and its context, borrowed together from the reactor's disjoint fields.
    fn slot_and_context(&mut self, key: usize) -> Option<(&mut Slot, Context<'_>)> {
        let Reactor {
            slab,
            config,
            tls,
            scratch,
            request,
            ..
        } = self;
        let slot = slab.get_mut(key)?;
        let ctx = Context {
            config,
            tls,
            scratch,
            request,
        };
        Some((slot, ctx))
    }

    /// Calls `f` with the check and its context.
    fn with_check(&mut self, key: usize, f: impl FnOnce(&mut Check, &mut Context<'_>) -> Step) -> Step {
        match self.slot_and_context(key) {
            Some((slot, mut ctx)) => f(&mut slot.check, &mut ctx),
            None => Step::Wait,
        }
    }

    /// Calls an IO handler of the check with its socket.
    fn with_socket(
        &mut self,
        key: usize,
        f: impl FnOnce(&mut Check, &mut &TcpStream, &mut Context<'_>) -> Step,
    ) -> Step {
        let Some((slot, mut ctx)) = self.slot_and_context(key) else {
            return Step::Wait;
        };
        let Some(mut io) = slot.socket.as_ref() else {
            return Step::Wait;
        };
        f(&mut slot.check, &mut io, &mut ctx)
    }

    /// Carries out steps until the check waits or finishes.
    fn apply(&mut self, key: usize, mut step: Step, now: Instant) {
        loop {
            step = match step {
                Step::Wait => {
                    self.arm(key);
                    return;
                }
                Step::Finished(result) => {
                    self.finish(key, result);
                    return;
                }
                Step::Resolve => {
                    let Some(slot) = self.slab.get_mut(key) else { return };
                    let waiter = waiter_id(key, slot.generation);
                    let (host, port) = (slot.check.host(), slot.check.port());
                    match self.dns.lookup(host, port, waiter, now) {
                        Some(answer) => self.with_check(key, |check, ctx| check.on_resolved(answer, now, ctx)),
                        None => Step::Wait,
                    }
                }
                Step::NextHop => {
                    self.close_socket(key);
                    self.with_check(key, |check, ctx| check.start(now, ctx))
                }
                Step::Connect(addr) => {
                    self.close_socket(key);
                    let Some(slot) = self.slab.get_mut(key) else { return };
                    if !self.ip_gate.acquire(addr.ip(), (key, slot.generation)) {
                        // Parked until a connection to this IP ends; the check's deadline still runs.
                        slot.holds_ip = None;
                        Step::Wait
                    } else {
                        slot.holds_ip = Some(addr.ip());
                        self.open(key, addr, now)
                    }
                }
            };
        }
    }

    /// Opens and registers the socket for a connect attempt.
    fn open(&mut self, key: usize, addr: SocketAddr, now: Instant) -> Step {
        let result = TcpStream::connect(addr).and_then(|mut socket| {
            self.poll
                .registry()
                .register(&mut socket, Token(key), Interest::READABLE | Interest::WRITABLE)
                .map(|()| socket)
        });
        match result {
            Ok(socket) => {
                let Some(slot) = self.slab.get_mut(key) else {
                    return Step::Wait;
                };
                slot.socket = Some(socket);
                slot.connected = false;
                self.counters.socket_opened();
                slot.check.on_connect_begun(now, &self.config);
                Step::Wait
            }
            Err(e) if fd_limit::is_fd_exhaustion(&e) => {
                // Out of descriptors: wait for another check to free one rather than fail a healthy site.
                let Some(slot) = self.slab.get_mut(key) else {
                    return Step::Wait;
                };
                let (held, generation) = (slot.holds_ip.take(), slot.generation);
                if let Some(ip) = held {
                    self.release_ip(ip);
                }
                self.counters.fd_exhausted();
                self.fd_waiters.push_back((key, generation, addr));
                Step::Wait
            }
            Err(e) => self.with_check(key, |check, ctx| check.on_connect_failed(e, now, ctx)),
        }
    }

    /// Keeps the wheel entry in line with the check's deadline.
    fn arm(&mut self, key: usize) {
        let Some(slot) = self.slab.get_mut(key) else { return };
        let deadline = slot.check.deadline();
        // An earlier or equal entry already in the wheel will fire and re-arm; only an earlier deadline needs
        // a new entry.
        if slot.armed.is_none_or(|armed| deadline < armed) {
            slot.armed = Some(deadline);
            self.timers.insert(key, slot.generation, deadline);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        self.timers.advance(now, &mut self.expired);
        let mut expired = std::mem::take(&mut self.expired);
        for (key, generation) in expired.drain(..) {
            let Some(slot) = self.slab.get_mut(key) else { continue };
            if slot.generation != generation {
                continue;
            }
            slot.armed = None;
            if slot.check.deadline() > now {
                self.arm(key);
                continue;
            }
            let step = self.with_check(key, |check, ctx| check.on_deadline(now, ctx));
            self.apply(key, step, now);
        }
        self.expired = expired;
    }

    fn deliver_dns_answers(&mut self, now: Instant) {
        let mut done = std::mem::take(&mut self.dns_done);
        for (waiter, answer) in done.drain(..) {
            let (key, generation) = split_waiter(waiter);
            if self.slab.get(key).is_none_or(|slot| slot.generation != generation) {
                continue;
            }
            let step = self.with_check(key, |check, ctx| check.on_resolved(answer, now, ctx));
            self.apply(key, step, now);
        }
        self.dns_done = done;
    }

    fn close_socket(&mut self, key: usize) {
        let Some(slot) = self.slab.get_mut(key) else { return };
        let released = slot.holds_ip.take();
        if let Some(mut socket) = slot.socket.take() {
            // Deregistering a socket that is about to close cannot usefully fail; the close removes it anyway.
            let _ = self.poll.registry().deregister(&mut socket);
            self.counters.socket_closed();
        }
        if let Some(ip) = released {
            self.release_ip(ip);
        }
        self.retry_fd_waiter();
    }

    /// Hands a released per-IP slot to the next live waiter.
    fn release_ip(&mut self, ip: IpAddr) {
        while let Some((key, generation)) = self.ip_gate.release(ip) {
            let live = self.slab.get(key).is_some_and(|s| s.generation == generation);
            if live {
                let now = Instant::now();
                if let Some(slot) = self.slab.get_mut(key) {
                    slot.holds_ip = Some(ip);
                }
                let port = self.slab.get(key).map(|s| s.check.port()).unwrap_or(0);
                let step = self.open(key, SocketAddr::new(ip, port), now);
                self.apply(key, step, now);
                return;
            }
        }
    }

    fn retry_fd_waiter(&mut self) {
        while let Some((key, generation, addr)) = self.fd_waiters.pop_front() {
            if self.slab.get(key).is_some_and(|s| s.generation == generation) {
                let now = Instant::now();
                let step = Step::Connect(addr);
                self.apply(key, step, now);
                return;
            }
        }
    }

    fn finish(&mut self, key: usize, result: CheckResult) {
        self.close_socket(key);
        if let Some(slot) = self.slab.try_remove(key) {
            self.dns.cancel(waiter_id(key, slot.generation));
        }
        self.send(result);
    }

    fn send(&mut self, result: CheckResult) {
        self.counters.finished(&result);
        // A receiver that went away means nobody wants results any more; the checks still wind down.
        let _ = self.results.send(result);
    }

    fn abort_all(&mut self) {
        let now = Instant::now();
        let keys: Vec<usize> = self.slab.iter().map(|(key, _)| key).collect();
        for key in keys {
            let Some(slot) = self.slab.get_mut(key) else { continue };
            let result = slot.check.abort(now);
            self.finish(key, result);
        }
    }
}
