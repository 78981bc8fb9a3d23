//! `farm`: delay targets for the in-flight capacity bench, in a process of their own so their threads do
//! not count in the bench's RSS. Prints one URL per server, then `ready`; exits when stdin closes.
//!
//! ```text
//! farm --servers 4 --delay-ms 3000 [--tls-ca-file /tmp/ca.pem]
//! ```

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use jetmon_benches::farm::{FarmSpec, FIRST_HOST_OCTET, READY_LINE};
use jetmon_testkit::http::{Options, TargetServer};
use jetmon_testkit::tls::TestCa;

fn main() -> ExitCode {
    let spec = match FarmSpec::from_args(std::env::args().skip(1)) {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("farm: {message}");
            return ExitCode::from(2);
        }
    };
    let tls = spec.tls_ca_file.as_ref().map(|path| {
        let ca = TestCa::new("jetmon bench CA");
        let names: Vec<String> = (0..spec.servers).map(|i| host(i).to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let config = ca.server_config(&names);
        (ca, config, path)
    });
    if let Some((ca, _, path)) = &tls {
        if let Err(err) = std::fs::write(path, ca.cert_pem()) {
            eprintln!("farm: write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let options = Options {
        default_route: Some(spec.route()),
        ..Options::default()
    };
    let mut servers = Vec::with_capacity(spec.servers);
    let mut stdout = std::io::stdout().lock();
    for i in 0..spec.servers {
        let bind = SocketAddr::new(host(i), 0);
        let config = tls.as_ref().map(|(_, config, _)| config.clone());
        match TargetServer::start_with(bind, config, options.clone()) {
            Ok(server) => {
                let _ = writeln!(stdout, "{}", server.url("/"));
                servers.push(server);
            }
            Err(err) => {
                eprintln!("farm: bind {bind}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = writeln!(stdout, "{READY_LINE}");
    let _ = stdout.flush();
    drop(stdout);
    // Serve until the bench closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    ExitCode::SUCCESS
}

fn host(index: usize) -> IpAddr {
    let octet = u8::try_from(index).map_or(u8::MAX, |i| i.saturating_add(FIRST_HOST_OCTET));
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet))
}
