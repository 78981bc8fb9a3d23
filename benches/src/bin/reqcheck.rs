//! `reqcheck`: the idiomatic tokio + reqwest HEAD checker the engine is compared with. It reads a URL list,
//! sends one request per line with at most `--concurrency` in flight (a semaphore over spawned tasks, so
//! both cores work), and prints one JSON line: checks, ok, elapsed (first request to last answer) and
//! failures by class.
//!
//! By default every check is a new connection, as the engine's are (`pool_max_idle_per_host(0)` and
//! `Connection: close`). `--keep-alive` reuses connections instead; the bench uses that to drive
//! blackbox_exporter's `/probe` endpoint, where the exporter's own connections to the target are the
//! measured ones and `--expect-body 'probe_success 1'` counts a probe as ok only when it succeeded.
//!
//! ```text
//! reqcheck --urls urls.txt --concurrency 256 [--ca-file ca.pem] [--keep-alive] [--get]
//!          [--expect-body TEXT] [--timeout-ms 10000]
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONNECTION};
use reqwest::{Certificate, Client, Method};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

struct Args {
    urls: String,
    concurrency: usize,
    ca_file: Option<String>,
    keep_alive: bool,
    get: bool,
    expect_body: Option<String>,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        urls: String::new(),
        concurrency: 256,
        ca_file: None,
        keep_alive: false,
        get: false,
        expect_body: None,
        timeout: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--urls" => args.urls = value()?,
            "--concurrency" => {
                args.concurrency = value()?.parse().map_err(|_| "--concurrency: not a number")?;
            }
            "--ca-file" => args.ca_file = Some(value()?),
            "--keep-alive" => args.keep_alive = true,
            "--get" => args.get = true,
            "--expect-body" => args.expect_body = Some(value()?),
            "--timeout-ms" => {
                let ms = value()?.parse().map_err(|_| "--timeout-ms: not a number")?;
                args.timeout = Duration::from_millis(ms);
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if args.urls.is_empty() || args.concurrency == 0 {
        return Err(
            "usage: reqcheck --urls FILE --concurrency N [--ca-file PEM] [--keep-alive] [--get] \
                    [--expect-body TEXT] [--timeout-ms MS]"
                .to_string(),
        );
    }
    Ok(args)
}

fn build_client(args: &Args) -> Result<Client, String> {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(args.timeout)
        .http1_only();
    if !args.keep_alive {
        builder = builder.pool_max_idle_per_host(0);
    }
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| format!("{path}: {e}"))?;
        builder = builder.tls_built_in_root_certs(false).add_root_certificate(cert);
    }
    builder.build().map_err(|e| format!("build client: {e}"))
}

/// One request; `Ok(())` when it counts as a success, else the failure class.
async fn check(
    client: Client,
    url: String,
    method: Method,
    close: bool,
    expect: Option<Arc<str>>,
) -> Result<(), String> {
    let mut request = client.request(method, &url);
    if close {
        request = request.header(CONNECTION, HeaderValue::from_static("close"));
    }
    let response = request.send().await.map_err(|e| classify(&e))?;
    let status = response.status();
    match expect {
        Some(expect) => {
            let body = response.text().await.map_err(|e| classify(&e))?;
            if body.contains(&*expect) {
                Ok(())
            } else if status.is_success() {
                Err("body_mismatch".to_string())
            } else {
                Err(format!("http_{}", status.as_u16()))
            }
        }
        None if status.is_success() => Ok(()),
        None => Err(format!("http_{}", status.as_u16())),
    }
}

fn classify(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".to_string()
    } else if err.is_connect() {
        "connect".to_string()
    } else if err.is_body() || err.is_decode() {
        "body".to_string()
    } else {
        "request".to_string()
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("reqcheck: {message}");
            return ExitCode::from(2);
        }
    };
    let client = match build_client(&args) {
        Ok(client) => client,
        Err(message) => {
            eprintln!("reqcheck: {message}");
            return ExitCode::FAILURE;
        }
    };
    let urls: Vec<String> = match std::fs::read_to_string(&args.urls) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        Err(e) => {
            eprintln!("reqcheck: read {}: {e}", args.urls);
            return ExitCode::FAILURE;
        }
    };
    let method = if args.get { Method::GET } else { Method::HEAD };
    let expect: Option<Arc<str>> = args.expect_body.as_deref().map(Arc::from);
    let semaphore = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = JoinSet::new();
    let mut ok = 0usize;
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut record = |outcome: Result<Result<(), String>, tokio::task::JoinError>| match outcome {
        Ok(Ok(())) => ok += 1,
        Ok(Err(class)) => *failures.entry(class).or_default() += 1,
        Err(_) => *failures.entry("panic".to_string()).or_default() += 1,
    };
    let started = Instant::now();
    for url in urls.iter().cloned() {
        let Ok(permit) = Arc::clone(&semaphore).acquire_owned().await else {
            break;
        };
        let (client, method, expect) = (client.clone(), method.clone(), expect.clone());
        let close = !args.keep_alive;
        tasks.spawn(async move {
            let outcome = check(client, url, method, close, expect).await;
            drop(permit);
            outcome
        });
        // Reap finished tasks as we go so the JoinSet stays at most `concurrency` long.
        while let Some(done) = tasks.try_join_next() {
            record(done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(done);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failures: Vec<String> = failures.iter().map(|(class, n)| format!("\"{class}\":{n}")).collect();
    println!(
        "{{\"checks\":{},\"ok\":{ok},\"elapsed_s\":{elapsed:.6},\"failures\":{{{}}}}}",
        urls.len(),
        failures.join(",")
    );
    ExitCode::SUCCESS
}
