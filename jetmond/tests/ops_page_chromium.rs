//! The status page in a real headless Chromium: after known checks the page, once its script ran, shows
//! the up/down counts and the chosen site's results and plot, and its screenshot is a real picture, not a
//! blank page. Skips with a message without `/usr/bin/chromium` unless `CI` is set (`.ci/run` installs it).

mod support;

use std::path::Path;
use std::process::Command;

use jetmon_testkit::http::TargetServer;
use support::daemon::{DaemonProcess, TempDir};
use support::http::{free_addr, wait_for_json};

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Decodes the PNG and counts its distinct colours (sampled), so a blank or single-colour page fails.
fn distinct_colours(png_path: &Path) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).expect("png file"),
    ));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
    let frame = reader.next_frame(&mut pixels).expect("a PNG frame");
    let bytes_per_pixel = frame.color_type.samples() * (frame.bit_depth as usize).div_ceil(8);
    let colours: std::collections::HashSet<&[u8]> = pixels[..frame.buffer_size()]
        .chunks(bytes_per_pixel)
        .step_by(7)
        .collect();
    (frame.width, frame.height, colours.len())
}

#[test]
fn status_page_renders_counts_site_rows_and_plot_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} is missing in CI: .ci/run installs it"
        );
        eprintln!("skipping: {CHROMIUM} is not installed (apt-get install chromium)");
        return;
    }
    let dir = TempDir::new("ops-page");
    let up1 = TargetServer::start("127.0.0.64:0".parse().unwrap(), None).unwrap();
    let up2 = TargetServer::start("127.0.0.65:0".parse().unwrap(), None).unwrap();
    let refused = free_addr("127.0.0.66");
    std::fs::write(
        dir.0.join("sites.txt"),
        format!(
            "101 {}\n102 {}\n103 http://{refused}/\n",
            up1.url("/status/200"),
            up2.url("/status/200")
        ),
    )
    .unwrap();
    let ops = free_addr("127.0.0.1");
    let config = dir.0.join("jetmond.json");
    // One-second rounds: the site has a few results to plot. A refused site needs two failed checks to
    // go DOWN (no verifliers), which fills the recent-changes list.
    std::fs::write(
        &config,
        format!(
            r#"{{"sites_file": "sites.txt", "state_file": "state.json", "notifications_file": "notes.jsonl",
                "min_time_between_rounds_sec": 1, "time_between_checks_sec": 1, "num_of_checks": 2,
                "check_timeout_sec": 3, "allow_networks": ["127.0.0.0/8"], "ops_listen": "{ops}"}}"#
        ),
    )
    .unwrap();
    let daemon = DaemonProcess::start(&config);
    wait_for_json(ops, "/api/status", "site 103 down", |s| s["sites"]["down"] == 1);
    wait_for_json(ops, "/api/sites/101", "a few results of site 101", |s| {
        s["results"].as_array().is_some_and(|r| r.len() >= 4)
    });

    let url = format!("http://{ops}/?site=101");
    let dom = chromium(&dir.0.join("profile-dom"), &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains(r#"<span id="count-running">2</span>"#), "{dom}");
    assert!(dom.contains(r#"<span id="count-down">1</span>"#), "{dom}");
    assert!(dom.contains(r#"<span id="tracked">3</span>"#), "{dom}");
    assert!(dom.contains("blog 101: running"), "{dom}");
    let rows = dom.split(r#"<tbody id="site-rows">"#).nth(1).unwrap_or_default();
    let rows = rows.split("</tbody>").next().unwrap_or_default();
    assert!(rows.matches("<tr>").count() >= 4, "site rows: {rows}");
    assert!(rows.contains("<td>200</td>"), "site rows: {rows}");
    assert!(dom.contains("<polyline"), "the latency plot is drawn: {dom}");
    let changes = dom.split(r#"<tbody id="changes">"#).nth(1).unwrap_or_default();
    assert!(
        changes.contains(">103</a>") && changes.contains("down"),
        "recent changes: {changes}"
    );

    let screenshot = dir.0.join("page.png");
    chromium(
        &dir.0.join("profile-shot"),
        &[&format!("--screenshot={}", screenshot.display())],
        &url,
    );
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot of {size} bytes is too small to hold the page"
    );
    let (width, height, colours) = distinct_colours(&screenshot);
    assert_eq!((width, height), (1280, 900));
    assert!(colours > 50, "only {colours} colours: the page did not render");
    if let Some(keep) = std::env::var_os("JETMON_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&screenshot, keep);
    }
    assert!(daemon.terminate().success());
}
