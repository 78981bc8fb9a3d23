//! One accepted socket, plain or TLS, and the request-head reader.
//!
//! The raw `TcpStream` stays reachable under TLS so behaviours can reset or hold the connection
//! below the TLS layer, as a crashing or stalled server would.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use socket2::SockRef;

/// Largest request head accepted; more is answered with 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How long [`Conn::close`] waits for the client to close after the response.
const LINGER_DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

const HEAD_TERMINATOR: &[u8] = b"\r\n\r\n";
const READ_CHUNK_BYTES: usize = 2048;

pub(super) enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

pub(super) enum HeadError {
    TooLarge,
    /// EOF, timeout, reset or a failed TLS handshake: nothing to answer.
    Unreadable,
}

impl Conn {
    pub(super) fn new(tcp: TcpStream, tls: Option<&Arc<ServerConfig>>) -> io::Result<Conn> {
        Ok(match tls {
            None => Conn::Plain(tcp),
            Some(config) => {
                let session = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
                Conn::Tls(Box::new(StreamOwned::new(session, tcp)))
            }
        })
    }

    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(stream) => &stream.sock,
        }
    }

    /// The SNI the client sent, if this is TLS and it sent one.
    pub(super) fn server_name(&self) -> Option<String> {
        match self {
            Conn::Plain(_) => None,
            Conn::Tls(stream) => stream.conn.server_name().map(str::to_owned),
        }
    }

    /// Reads up to and including the blank line that ends the head; bytes after it are dropped.
    pub(super) fn read_head(&mut self) -> Result<Vec<u8>, HeadError> {
        let mut head = Vec::with_capacity(READ_CHUNK_BYTES);
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        loop {
            let read = match self.read(&mut chunk) {
                Ok(0) | Err(_) => return Err(HeadError::Unreadable),
                Ok(read) => read,
            };
            let search_from = head.len().saturating_sub(HEAD_TERMINATOR.len() - 1);
            head.extend_from_slice(&chunk[..read]);
            let end = head[search_from..]
                .windows(HEAD_TERMINATOR.len())
                .position(|window| window == HEAD_TERMINATOR)
                .map(|at| search_from + at + HEAD_TERMINATOR.len());
            if let Some(end) = end {
                head.truncate(end);
            }
            if head.len() > MAX_HEAD_BYTES {
                return Err(HeadError::TooLarge);
            }
            if end.is_some() {
                return Ok(head);
            }
        }
    }

    /// Writes and flushes all of `bytes`.
    pub(super) fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)?;
        self.flush()
    }

    /// An orderly close: TLS close_notify, FIN, then a short drain of whatever the client still
    /// sends. Closing a socket with unread input makes the kernel send RST, which can destroy the
    /// response before the client reads it (e.g. a 431 to a client still writing its head).
    pub(super) fn close(mut self) {
        if let Conn::Tls(stream) = &mut self {
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
        let mut tcp = self.tcp();
        if tcp.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER_DRAIN_TIMEOUT;
        let mut sink = [0u8; 512];
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() || tcp.set_read_timeout(Some(remaining)).is_err() {
                return;
            }
            match tcp.read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// An abortive close: SO_LINGER 0 makes the kernel send RST instead of FIN.
    pub(super) fn reset(self) {
        let _ = SockRef::from(self.tcp()).set_linger(Some(Duration::ZERO));
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.read(buf),
            Conn::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(tcp) => tcp.write(buf),
            Conn::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(tcp) => tcp.flush(),
            Conn::Tls(stream) => stream.flush(),
        }
    }
}
