//! The check state machine driven with byte strings and a fake clock.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use super::*;

/// A socket stand-in: scripted reads (`None` = would block) and a record of writes.
#[derive(Default)]
struct FakeIo {
    reads: VecDeque<Option<Vec<u8>>>,
    eof_when_drained: bool,
    written: Vec<u8>,
}

impl FakeIo {
    fn with(chunks: &[&[u8]]) -> FakeIo {
        FakeIo {
            reads: chunks.iter().map(|c| Some(c.to_vec())).collect(),
            ..FakeIo::default()
        }
    }
}

impl Read for FakeIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.reads.pop_front() {
            Some(Some(mut chunk)) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    self.reads.push_front(Some(chunk.split_off(n)));
                }
                Ok(n)
            }
            Some(None) => Err(io::ErrorKind::WouldBlock.into()),
            None if self.eof_when_drained => Ok(0),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for FakeIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Harness {
    config: EngineConfig,
    tls: Arc<ClientConfig>,
    scratch: Vec<u8>,
    request: Vec<u8>,
    now: Instant,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(EngineConfig::default())
    }

    fn with_config(config: EngineConfig) -> Harness {
        Harness {
            scratch: vec![0; config.max_response_head_bytes],
            config,
            tls: crate::tls::client_config(None, false).unwrap(),
            request: Vec::new(),
            now: Instant::now(),
        }
    }

    fn ctx(&mut self) -> Context<'_> {
        Context {
            config: &self.config,
            tls: &self.tls,
            scratch: &mut self.scratch,
            request: &mut self.request,
        }
    }

    fn check(&self, url: &str) -> Check {
        Check::new(7, url.to_string(), self.now, &self.config).unwrap()
    }

    /// Starts the check, expects a connect, and connects it to `io`.
    fn connect(&mut self, check: &mut Check, io: &mut FakeIo) -> Step {
        let now = self.now;
        match check.start(now, &mut self.ctx()) {
            Step::Connect(_) => {}
            other => panic!("expected Connect, got {other:?}"),
        }
        check.on_connect_begun(now, &self.config);
        self.now += Duration::from_millis(3);
        let now = self.now;
        check.on_connected(io, now, &mut self.ctx())
    }
}

fn finished(step: Step) -> CheckResult {
    match step {
        Step::Finished(result) => result,
        other => panic!("expected Finished, got {other:?}"),
    }
}

#[test]
fn plain_200_in_one_read_is_up_and_request_is_framed() {
    let mut h = Harness::new();
    let mut check = h.check("http://127.0.0.1:8080/x?y=1");
    let mut io = FakeIo::with(&[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"]);
    let result = finished(h.connect(&mut check, &mut io));
    assert_eq!((result.verdict, result.code, result.error), (Verdict::Up, 200, None));
    assert!(result.rtt >= Duration::from_millis(3));
    assert_eq!(result.timings.connect, Some(Duration::from_millis(3)));
    assert_eq!(result.timings.dns, None, "IP literal needs no DNS");
    let request = String::from_utf8(io.written).unwrap();
    assert!(
        request.starts_with("HEAD /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"),
        "{request}"
    );
    assert!(request.contains(&format!("User-Agent: {}\r\n", crate::config::DEFAULT_USER_AGENT)));
    assert!(request.contains("Connection: close\r\n"));
}

#[test]
fn head_split_across_reads_is_reassembled() {
    let mut h = Harness::new();
    let mut check = h.check("http://127.0.0.1/");
    let mut io = FakeIo::with(&[b"HTTP/1.1 20"]);
    assert!(matches!(h.connect(&mut check, &mut io), Step::Wait));
    io.reads.push_back(Some(b"4 No Content\r\nX: y".to_vec()));
    io.reads.push_back(None);
    io.reads.push_back(Some(b"\r\n\r\n".to_vec()));
    assert!(matches!(check.on_io(&mut io, h.now, &mut h.ctx()), Step::Wait));
    let result = finished(check.on_io(&mut io, h.now, &mut h.ctx()));
    assert_eq!((result.verdict, result.code), (Verdict::Up, 204));
}

#[test]
fn relative_redirect_starts_next_hop_on_resolved_url() {
    let mut h = Harness::new();
    let mut check = h.check("http://127.0.0.1:81/a/b");
    let mut io = FakeIo::with(&[b"HTTP/1.1 301 Moved\r\nLocation: ../c\r\n\r\n"]);
    assert!(matches!(h.connect(&mut check, &mut io), Step::NextHop));
    assert_eq!(check.url.as_str(), "http://127.0.0.1:81/c");
    let mut io = FakeIo::with(&[b"HTTP/1.1 200 OK\r\n\r\n"]);
    let result = finished(h.connect(&mut check, &mut io));
    assert_eq!((result.verdict, result.code, result.redirects), (Verdict::Up, 200, 1));
    assert!(String::from_utf8(io.written).unwrap().starts_with("HEAD /c HTTP/1.1"));
}

#[test]
fn redirect_limit_keeps_last_3xx_as_up() {
    let mut h = Harness::with_config(EngineConfig {
        max_redirects: 1,
        ..EngineConfig::default()
    });
    let mut check = h.check("http://127.0.0.1/");
    let mut io = FakeIo::with(&[b"HTTP/1.1 302 Found\r\nLocation: /1\r\n\r\n"]);
    assert!(matches!(h.connect(&mut check, &mut io), Step::NextHop));
    let mut io = FakeIo::with(&[b"HTTP/1.1 302 Found\r\nLocation: /2\r\n\r\n"]);
    let result = finished(h.connect(&mut check, &mut io));
    assert_eq!(
        (result.verdict, result.code, result.redirects, result.error),
        (Verdict::Up, 302, 1, None)
    );
}

#[test]
fn redirect_without_location_is_down_with_997() {
    let mut h = Harness::new();
    let mut check = h.check("http://127.0.0.1/");
    let mut io = FakeIo::with(&[b"HTTP/1.1 302 Found\r\n\r\n"]);
    let result = finished(h.connect(&mut check, &mut io));
    assert_eq!(result.verdict, Verdict::Down);
    assert_eq!(result.error, Some(ErrorClass::Redirect));
    assert_eq!(result.legacy_error_code, Some(997));
    assert_eq!(result.code, 302);
}

#[test]
fn garbage_status_line_is_protocol_999() {
    let mut h = Harness::new();
    let mut check = h.check("http://127.0.0.1/");
    let mut io = FakeIo::with(&[b"SSH-2.0-OpenSSH_9.0\r\n\r\n"]);
    let result = finished(h.connect(&mut check, &mut io));
    assert_eq!(
        (result.error, result.legacy_error_code),
        (Some(ErrorClass::Protocol), Some(999))
    );
}

#[test]
fn close_without_response_is_protocol_error() {
    let mut h = Harness::new();
    let mut check = h.check("http://127.0.0.1/");
    let mut io = FakeIo {
        eof_when_drained: true,
        ..FakeIo::default()
    };
    let result = finished(h.connect(&mut check, &mut io));
    assert_eq!(result.error, Some(ErrorClass::Protocol));
    assert!(result.detail.contains("without a response"), "{}", result.detail);
}

#[test]
fn whole_check_deadline_gives_timeout_998() {
    let mut h = Harness::new();
    let mut check = h.check("http://127.0.0.1/");
    let mut io = FakeIo::default();
    assert!(matches!(h.connect(&mut check, &mut io), Step::Wait));
    assert_eq!(
        check.deadline(),
        h.now - Duration::from_millis(3) + h.config.check_timeout
    );
    let early = check.deadline() - Duration::from_millis(1);
    assert!(matches!(check.on_deadline(early, &mut h.ctx()), Step::Wait));
    let late = check.deadline();
    let result = finished(check.on_deadline(late, &mut h.ctx()));
    assert_eq!(
        (result.error, result.legacy_error_code),
        (Some(ErrorClass::Timeout), Some(998))
    );
    assert!(result.detail.contains("waiting for the response"), "{}", result.detail);
}

#[test]
fn refused_connect_tries_next_address_then_fails_995() {
    let mut h = Harness::new();
    let mut check = h.check("http://multi.example/");
    assert!(matches!(check.start(h.now, &mut h.ctx()), Step::Resolve));
    let addrs: Addrs = Arc::from(["127.0.0.2".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()].as_slice());
    let now = h.now;
    let Step::Connect(first) = check.on_resolved(Ok(addrs), now, &mut h.ctx()) else {
        panic!()
    };
    assert_eq!(first, "127.0.0.2:80".parse().unwrap());
    check.on_connect_begun(now, &h.config);
    let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
    let Step::Connect(second) = check.on_connect_failed(refused(), now, &mut h.ctx()) else {
        panic!()
    };
    assert_eq!(second, "[::1]:80".parse().unwrap());
    let result = finished(check.on_connect_failed(refused(), now, &mut h.ctx()));
    assert_eq!(
        (result.error, result.legacy_error_code),
        (Some(ErrorClass::Refused), Some(995))
    );
    assert!(result.detail.contains("[::1]:80"), "{}", result.detail);
}

#[test]
fn connect_attempt_timeout_moves_to_next_address() {
    let mut h = Harness::new();
    let mut check = h.check("http://multi.example/");
    let _ = check.start(h.now, &mut h.ctx());
    let addrs: Addrs = Arc::from(["127.0.0.2".parse::<IpAddr>().unwrap(), "127.0.0.3".parse().unwrap()].as_slice());
    let now = h.now;
    let _ = check.on_resolved(Ok(addrs), now, &mut h.ctx());
    check.on_connect_begun(now, &h.config);
    assert_eq!(
        check.deadline(),
        now + h.config.connect_timeout / 2,
        "two addresses share the connect limit"
    );
    let at = check.deadline();
    let Step::Connect(next) = check.on_deadline(at, &mut h.ctx()) else {
        panic!()
    };
    assert_eq!(next, "127.0.0.3:80".parse().unwrap());
}

#[test]
fn address_policy_forbids_destination() {
    let config = EngineConfig {
        address_policy: crate::policy::AddressPolicy::public_only(Vec::new()),
        ..EngineConfig::default()
    };
    let mut h = Harness::with_config(config);
    let mut check = h.check("http://127.0.0.1/");
    let now = h.now;
    let result = finished(check.start(now, &mut h.ctx()));
    assert_eq!(result.error, Some(ErrorClass::Forbidden));
}

#[test]
fn oversized_head_is_judged_by_its_status_line() {
    let mut h = Harness::with_config(EngineConfig {
        max_response_head_bytes: 256,
        ..EngineConfig::default()
    });
    let mut check = h.check("http://127.0.0.1/");
    let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1000));
    let mut io = FakeIo::with(&[&big]);
    let result = finished(h.connect(&mut check, &mut io));
    assert_eq!((result.verdict, result.code), (Verdict::Up, 200));

    let mut check = h.check("http://127.0.0.1/");
    let mut io = FakeIo::with(&[&[b'x'; 1000]]);
    let result = finished(h.connect(&mut check, &mut io));
    assert_eq!(result.error, Some(ErrorClass::Protocol));
}

#[test]
fn invalid_urls_finish_at_once() {
    let config = EngineConfig::default();
    for bad in [
        "example.com",
        "ftp://example.com/",
        "http://",
        "http://exa mple.com/",
        "",
    ] {
        let result = Check::new(1, bad.to_string(), Instant::now(), &config).err().unwrap();
        assert_eq!(result.error, Some(ErrorClass::InvalidUrl), "{bad}");
        assert_eq!(result.url, bad);
    }
}
