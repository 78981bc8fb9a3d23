//! A throwaway nginx on 127.0.0.1 that answers `200` with an empty body on every path: the fastest local
//! target this machine has, so the engine and `wrk` both meet the same ceiling.
//!
//! The config is generated into a scratch directory (pid, logs and temp paths there too). One worker
//! process, no access log, and no TLS session resumption: every HTTPS connection pays a full handshake for
//! every client, which is what a monitor sees across thousands of distinct sites.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::scratch::free_port;
use crate::BenchError;

/// Where Debian's package installs nginx.
pub const NGINX_BINARY: &str = "/usr/sbin/nginx";
/// What to tell the user when nginx or wrk is missing.
pub const INSTALL_HINT: &str = "nginx not installed: apt-get install -y nginx wrk";
/// How long nginx may take to accept connections after start.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
const READY_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a graceful stop may take before nginx is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Enough for wrk's 64 connections and the engine's 1024 in flight, with room for TIME_WAIT churn.
const WORKER_CONNECTIONS: u32 = 8192;
const LISTEN_BACKLOG: u32 = 4096;
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Certificate and key PEM files for the HTTPS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server certificate chain (leaf first).
    pub cert: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
}

/// A running nginx; stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    extra: Vec<SocketAddr>,
}

impl Nginx {
    /// Whether the nginx binary is present.
    pub fn is_installed() -> bool {
        Path::new(NGINX_BINARY).is_file()
    }

    /// Writes a config into `dir` and starts nginx in the foreground on free ports of 127.0.0.1, plain HTTP
    /// and, with `tls`, HTTPS. Returns once both ports accept connections.
    pub fn start(dir: &Path, tls: Option<&TlsFiles>) -> Result<Nginx, BenchError> {
        Nginx::start_with_hosts(dir, tls, &[])
    }

    /// As [`Nginx::start`], and the plain-HTTP server also listens on the same port of each of `extra_hosts`
    /// (other 127.0.0.0/8 addresses: targets for names a local DNS server resolves to several addresses).
    pub fn start_with_hosts(dir: &Path, tls: Option<&TlsFiles>, extra_hosts: &[Ipv4Addr]) -> Result<Nginx, BenchError> {
        let http_addr = SocketAddr::new(LOOPBACK, free_port(LOOPBACK)?);
        let https_addr = match tls {
            Some(_) => Some(SocketAddr::new(LOOPBACK, free_port(LOOPBACK)?)),
            None => None,
        };
        let config_path = dir.join("nginx.conf");
        let extra: Vec<SocketAddr> = extra_hosts
            .iter()
            .map(|ip| SocketAddr::new(IpAddr::V4(*ip), http_addr.port()))
            .collect();
        let config = render_config(dir, http_addr, &extra, https_addr.zip(tls));
        fs::write(&config_path, config).map_err(BenchError::io(format!("write {}", config_path.display())))?;
        let error_log = dir.join("error.log");
        let child = Command::new(NGINX_BINARY)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&config_path)
            .arg("-e")
            .arg(&error_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(BenchError::io(format!("start {NGINX_BINARY}")))?;
        let mut nginx = Nginx {
            child,
            http_addr,
            https_addr,
            extra,
        };
        nginx.wait_ready(&error_log)?;
        Ok(nginx)
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn http_url(&self) -> String {
        format!("http://{}/", self.http_addr)
    }

    /// The plain-HTTP port (the same on every extra host).
    pub fn http_port(&self) -> u16 {
        self.http_addr.port()
    }

    /// `https://127.0.0.1:PORT/` when started with TLS files.
    pub fn https_url(&self) -> Option<String> {
        self.https_addr.map(|addr| format!("https://{addr}/"))
    }

    fn wait_ready(&mut self, error_log: &Path) -> Result<(), BenchError> {
        let started = Instant::now();
        let addrs: Vec<SocketAddr> = std::iter::once(self.http_addr)
            .chain(self.https_addr)
            .chain(self.extra.iter().copied())
            .collect();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::ToolFailed {
                    tool: "nginx",
                    status: status.to_string(),
                    stderr: fs::read_to_string(error_log).unwrap_or_default(),
                });
            }
            if addrs
                .iter()
                .all(|addr| TcpStream::connect_timeout(addr, READY_POLL_INTERVAL).is_ok())
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(BenchError::Timeout {
                    what: format!("nginx start (log: {})", error_log.display()),
                    limit: READY_TIMEOUT,
                });
            }
            std::thread::sleep(READY_POLL_INTERVAL);
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master take its workers down; SIGKILL would orphan them on the ports.
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(READY_POLL_INTERVAL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn render_config(
    dir: &Path,
    http_addr: SocketAddr,
    extra: &[SocketAddr],
    https: Option<(SocketAddr, &TlsFiles)>,
) -> String {
    let dir = dir.display();
    let extra_listen: String = extra
        .iter()
        .map(|addr| format!("        listen {addr} backlog={LISTEN_BACKLOG};\n"))
        .collect();
    let tls_server = match https {
        Some((addr, files)) => format!(
            "    server {{\n\
             \x20       listen {addr} ssl backlog={LISTEN_BACKLOG};\n\
             \x20       ssl_certificate {cert};\n\
             \x20       ssl_certificate_key {key};\n\
             \x20       ssl_session_cache off;\n\
             \x20       ssl_session_tickets off;\n\
             \x20       location / {{ return 200; }}\n\
             \x20   }}\n",
            cert = files.cert.display(),
            key = files.key.display(),
        ),
        None => String::new(),
    };
    format!(
        "worker_processes 1;\n\
         daemon off;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections {WORKER_CONNECTIONS}; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {dir}/client_body;\n\
         \x20   proxy_temp_path {dir}/proxy;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi;\n\
         \x20   uwsgi_temp_path {dir}/uwsgi;\n\
         \x20   scgi_temp_path {dir}/scgi;\n\
         \x20   server {{\n\
         \x20       listen {http_addr} backlog={LISTEN_BACKLOG};\n\
         {extra_listen}\
         \x20       location / {{ return 200; }}\n\
         \x20   }}\n\
         {tls_server}\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_every_path_in_the_scratch_dir() {
        let config = render_config(
            Path::new("/tmp/x"),
            "127.0.0.1:8080".parse().unwrap(),
            &["127.0.1.1:8080".parse().unwrap()],
            None,
        );
        assert!(config.contains("pid /tmp/x/nginx.pid;"));
        assert!(config.contains("listen 127.0.0.1:8080 backlog=4096;"));
        assert!(config.contains("listen 127.0.1.1:8080 backlog=4096;"));
        assert!(config.contains("access_log off;"));
        assert!(!config.contains("ssl"));
    }

    #[test]
    fn tls_listener_disables_session_resumption() {
        let files = TlsFiles {
            cert: PathBuf::from("/tmp/x/cert.pem"),
            key: PathBuf::from("/tmp/x/key.pem"),
        };
        let config = render_config(
            Path::new("/tmp/x"),
            "127.0.0.1:8080".parse().unwrap(),
            &[],
            Some(("127.0.0.1:8443".parse().unwrap(), &files)),
        );
        assert!(config.contains("listen 127.0.0.1:8443 ssl"));
        assert!(config.contains("ssl_session_tickets off;"));
        assert!(config.contains("ssl_certificate_key /tmp/x/key.pem;"));
    }
}
