//! Optional statsd output (`statsd_address`), for users migrating from jetmon.js, whose only stats went to
//! statsd. Fire-and-forget UDP, one datagram per stats line: a lost packet costs one sample, never a stall.

use std::net::{SocketAddr, UdpSocket};

/// Sends the stats line's numbers as statsd gauges and counters.
pub struct Statsd {
    socket: UdpSocket,
    target: SocketAddr,
    prefix: String,
}

/// One stats line's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatsdSample {
    /// Checks answered up since the last sample.
    pub up: u64,
    /// Checks answered down since the last sample.
    pub down: u64,
    /// Results per second over the interval.
    pub results_per_second: f64,
    /// Checks in flight now.
    pub in_flight: usize,
    /// Checks queued for the engine now.
    pub queued: usize,
    /// Sites of the current round dispatched so far.
    pub round_dispatched: usize,
    /// Sites in the current round.
    pub round_total: usize,
    /// Re-checks waiting.
    pub rechecks_waiting: usize,
    /// Notifications since the last sample.
    pub notifications: u64,
}

impl Statsd {
    /// A sink sending to `target` with metric names under `prefix` (e.g. `jetmon`).
    pub fn new(target: SocketAddr, prefix: &str) -> std::io::Result<Statsd> {
        let bind: SocketAddr = if target.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
            .parse()
            .map_err(std::io::Error::other)?;
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        Ok(Statsd {
            socket,
            target,
            prefix: prefix.trim_end_matches('.').to_string(),
        })
    }

    /// The datagram for `sample` (newline-separated statsd lines).
    pub fn render(&self, s: &StatsdSample) -> String {
        let p = &self.prefix;
        format!(
            "{p}.checks.up:{}|c\n{p}.checks.down:{}|c\n{p}.checks.per_second:{:.1}|g\n{p}.engine.in_flight:{}|g\n\
             {p}.engine.queued:{}|g\n{p}.round.dispatched:{}|g\n{p}.round.total:{}|g\n{p}.rechecks.waiting:{}|g\n\
             {p}.notifications:{}|c",
            s.up,
            s.down,
            s.results_per_second,
            s.in_flight,
            s.queued,
            s.round_dispatched,
            s.round_total,
            s.rechecks_waiting,
            s.notifications
        )
    }

    /// Sends `sample`; errors (no listener, full buffer) are ignored on purpose.
    pub fn send(&self, sample: &StatsdSample) {
        let _ = self.socket.send_to(self.render(sample).as_bytes(), self.target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_arrive_as_statsd_lines() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let statsd = Statsd::new(listener.local_addr().unwrap(), "jetmon.").unwrap();
        statsd.send(&StatsdSample {
            up: 3,
            down: 1,
            in_flight: 7,
            round_total: 10,
            ..StatsdSample::default()
        });
        let mut buf = [0u8; 2048];
        let n = listener.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        for line in [
            "jetmon.checks.up:3|c",
            "jetmon.checks.down:1|c",
            "jetmon.engine.in_flight:7|g",
            "jetmon.round.total:10|g",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
    }
}
