//! Resident memory of this process, read from `/proc/self/status`.

/// `VmRSS` of this process in KiB, or `None` where `/proc` is unavailable.
pub fn current_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss_kib(&status)
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in KiB.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tbench\nVmHWM:\t  9000 kB\nVmRSS:\t   8123 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_kib(status), Some(8123));
    }

    #[test]
    fn missing_or_unitless_vm_rss_is_none() {
        assert_eq!(parse_vm_rss_kib("Name:\tbench\n"), None);
        assert_eq!(parse_vm_rss_kib("VmRSS:\t12\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        assert!(current_rss_kib().is_some_and(|kib| kib > 0));
    }
}
