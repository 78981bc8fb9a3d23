//! A tiny local web server with a few behaviours of real sites, so a new user sees real results from the
//! shipped example list on a machine without internet access (`--demo-target`). Not for production use:
//! one thread per connection, answers only the paths below.
//!
//! | path      | answer                                   |
//! |-----------|------------------------------------------|
//! | `/`       | 200                                      |
//! | `/moved`  | 301 to `/`                               |
//! | `/error`  | 500                                      |
//! | `/slow`   | 200 after 1.5 s                          |
//! | `/hang`   | nothing, connection held for 30 s         |
//! | other     | 404                                      |

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// How long `/slow` waits.
const SLOW_DELAY: Duration = Duration::from_millis(1500);
/// How long `/hang` holds a connection.
const HANG_TIME: Duration = Duration::from_secs(30);
/// Bound on a request head; the demo only needs the request line.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Starts the demo server on `addr` in background threads and returns the bound address.
pub fn start(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("demo-target".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || serve(stream));
        }
    })?;
    Ok(bound)
}

fn serve(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_BYTES {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let response: &[u8] = match path {
        "/" => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "/moved" => b"HTTP/1.1 301 Moved Permanently\r\nLocation: /\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "/error" => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "/slow" => {
            std::thread::sleep(SLOW_DELAY);
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
        "/hang" => {
            std::thread::sleep(HANG_TIME);
            return;
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    };
    let _ = stream.write_all(response);
}
