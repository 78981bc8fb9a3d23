//! Moving bytes for one check, plain or through rustls, over any non-blocking `Read + Write`.
//!
//! Every function here runs until the socket says `WouldBlock`: mio is edge-triggered, so stopping early would
//! leave data unread with no further event to wake us.

use std::io::{self, Read, Write};

use rustls::ClientConnection;

/// What one receive attempt produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// `n` plaintext bytes are in the buffer.
    Data(usize),
    /// Nothing more can be read until the next readable event.
    WouldBlock,
    /// The peer closed its side (cleanly or not).
    Eof,
}

/// Why the transport failed.
#[derive(Debug)]
pub(crate) enum TransportError {
    /// The socket failed (reset, broken pipe...).
    Io(io::Error),
    /// TLS failed: alert, bad certificate, protocol violation.
    Tls(rustls::Error),
}

/// Writes what rustls has queued. Returns true when everything queued went out.
pub(crate) fn flush_tls<S: Write>(tls: &mut ClientConnection, io: &mut S) -> Result<bool, TransportError> {
    while tls.wants_write() {
        match tls.write_tls(io) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TransportError::Io(e)),
        }
    }
    Ok(true)
}

/// Feeds TLS records from the socket into rustls. Returns `Eof` when the socket is closed, `WouldBlock` when
/// it is drained, `Data(0)` when records were processed and the caller should look at the connection again.
pub(crate) fn read_tls<S: Read + Write>(tls: &mut ClientConnection, io: &mut S) -> Result<Received, TransportError> {
    loop {
        match tls.read_tls(io) {
            Ok(0) => return Ok(Received::Eof),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    // Tell the server why we stop (the alert rustls queued); failure to send it changes nothing.
                    let _ = flush_tls(tls, io);
                    return Err(TransportError::Tls(e));
                }
                return Ok(Received::Data(0));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Received::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TransportError::Io(e)),
        }
    }
}

/// Reads plaintext, plain or decrypted, into `buf`.
pub(crate) fn receive<S: Read + Write>(
    tls: Option<&mut ClientConnection>,
    io: &mut S,
    buf: &mut [u8],
) -> Result<Received, TransportError> {
    let Some(tls) = tls else {
        return loop {
            match io.read(buf) {
                Ok(0) => break Ok(Received::Eof),
                Ok(n) => break Ok(Received::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(Received::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(TransportError::Io(e)),
            }
        };
    };
    loop {
        match tls.reader().read(buf) {
            Ok(0) => return Ok(Received::Eof),
            Ok(n) => return Ok(Received::Data(n)),
            // Peer closed without close_notify: for a check that is just the end of the response.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Received::Eof),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => match read_tls(tls, io)? {
                Received::Data(_) => continue,
                other => return Ok(other),
            },
            Err(e) => return Err(TransportError::Io(e)),
        }
    }
}

/// Writes `bytes[*sent..]` to a plain socket, advancing `sent`. Returns true when all is written.
pub(crate) fn send_plain<S: Write>(io: &mut S, bytes: &[u8], sent: &mut usize) -> Result<bool, TransportError> {
    while *sent < bytes.len() {
        match io.write(&bytes[*sent..]) {
            Ok(0) => return Err(TransportError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TransportError::Io(e)),
        }
    }
    Ok(true)
}
