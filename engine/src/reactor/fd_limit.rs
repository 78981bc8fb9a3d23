//! The open-file limit decides how many sockets can be in flight. The engine raises the soft limit to the
//! hard one at start and sizes its in-flight cap from what it got, so it queues checks instead of failing
//! them with EMFILE.

/// Raises RLIMIT_NOFILE's soft limit to its hard limit and returns the soft limit now in force.
pub(crate) fn raise_nofile_limit() -> std::io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    Ok(limit.rlim_cur)
}

/// Whether a socket error means the process or system ran out of file descriptors.
pub(crate) fn is_fd_exhaustion(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_is_idempotent_and_positive() {
        let first = raise_nofile_limit().unwrap();
        assert!(first > 0);
        assert_eq!(raise_nofile_limit().unwrap(), first);
    }

    #[test]
    fn emfile_is_exhaustion_refused_is_not() {
        assert!(is_fd_exhaustion(&std::io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_fd_exhaustion(&std::io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
    }
}
