//! What `wardend` asks of the operating system: enough open files for its connections.
//!
//! Every connection holds a file descriptor, and the usual soft limit (1024) is far below what
//! a server needs, while the hard limit the administrator set is usually much higher. Raising
//! the soft limit to the hard one is what any process may do; the connection cap is then
//! fitted to the result, so that connections can never take the descriptors the database,
//! the control socket and the policy files need.

/// Descriptors kept back from connections: database pools, listeners, the control socket,
/// policy files, logs.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft open-file limit to the hard limit where allowed, and returns the soft
/// limit in force afterwards (`None`: unlimited).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        match setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
            Ok(()) => tracing::debug!(from = ?limit.current, to = ?limit.maximum, "raised the open-file limit"),
            Err(e) => tracing::info!(error = %e, limit = ?limit.current, "could not raise the open-file limit"),
        }
    }
    open_file_limit()
}

/// The soft open-file limit in force (`None`: unlimited).
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The connection cap that the open-file limit allows: `wanted`, or less when two
/// listeners' worth of connections and the reserve would not fit in `open_files`.
pub fn fit_connection_cap(wanted: usize, open_files: Option<u64>, listeners: usize) -> usize {
    let Some(open_files) = open_files else { return wanted };
    let per_listener = open_files.saturating_sub(RESERVED_DESCRIPTORS) / listeners.max(1) as u64;
    let fitted = wanted.min(usize::try_from(per_listener).unwrap_or(usize::MAX)).max(1);
    if fitted < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_files,
            serving = fitted,
            "the open-file limit is too low for server.max_connections: serving fewer connections at once"
        );
    }
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_files() {
        assert_eq!(fit_connection_cap(10_000, None, 1), 10_000);
        assert_eq!(fit_connection_cap(10_000, Some(1_048_576), 2), 10_000);
        assert_eq!(fit_connection_cap(10_000, Some(1024), 1), 960);
        assert_eq!(fit_connection_cap(10_000, Some(1024), 2), 480);
        assert_eq!(fit_connection_cap(10_000, Some(10), 1), 1, "never zero");
    }
}
