//! Checks a few URLs against a tiny web server this example starts on 127.0.0.1, so it runs anywhere:
//!
//! ```text
//! cargo run -p jetmon-engine --example check_local [URL ...]
//! ```
//!
//! With URLs on the command line it checks those instead (they need network access).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use jetmon_engine::{CheckRequest, Engine, EngineConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        let addr = serve_locally()?;
        urls = vec![
            format!("http://{addr}/"),
            format!("http://{addr}/missing"),
            "http://127.0.0.1:9/".to_string(),
        ];
    }

    let mut config = EngineConfig::default();
    config.check_timeout = Duration::from_secs(10);
    let engine = Engine::start(config)?;
    for (id, url) in urls.iter().enumerate() {
        engine.submit(CheckRequest::new(id as u64, url.clone()))?;
    }
    for _ in 0..urls.len() {
        let r = engine.results().recv()?;
        match r.error {
            None => println!("{:<40} {} HTTP {} in {} ms", r.url, r.verdict, r.code, r.rtt_ms()),
            Some(class) => println!("{:<40} {} ({class}: {})", r.url, r.verdict, r.detail),
        }
    }
    engine.shutdown();
    Ok(())
}

/// A minimal server: 200 for `/`, 404 for anything else.
fn serve_locally() -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let status = if buf[..n].starts_with(b"HEAD / ") {
                "200 OK"
            } else {
                "404 Not Found"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Ok(addr)
}
