//! A local target farm for jetmon's tests and benchmarks: HTTP(S) servers with scripted
//! behaviours of healthy and broken sites, a throwaway CA, a DNS server. Nothing here reaches
//! outside the machine; bind to `127.0.0.x` with port 0.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use jetmon_testkit::http::{refused_addr, TargetServer};
//!
//! let server = TargetServer::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
//! let mut client = TcpStream::connect(server.addr()).unwrap();
//! client.write_all(b"HEAD /redirect/2 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
//! let mut response = String::new();
//! client.read_to_string(&mut response).unwrap();
//! assert!(response.contains("Location: /redirect/1\r\n"));
//!
//! let nobody_home = refused_addr("127.0.0.1".parse().unwrap());
//! assert!(TcpStream::connect(nobody_home).is_err());
//! ```
//!
//! - [`http`]: [`http::TargetServer`], one path per behaviour (`/hang`, `/reset`, `/redirect/3`…).
//! - [`tls`]: [`tls::TestCa`], certificates and rustls configs generated at runtime.

pub mod dns;
pub mod http;
pub mod tls;
