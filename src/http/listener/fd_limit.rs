//! The file-descriptor limit: raised as far as allowed, and the source of
//! the default connection cap.

/// Descriptors kept back from client connections besides the database
/// pool: stdio, the runtime's own, the listener, migrations and other
/// files, and connections being refused or shed during a burst.
const RESERVED: u64 = 128;

/// Raises the soft RLIMIT_NOFILE to the hard limit (as `ulimit -n` would
/// need root to go past). Answers the soft limit now in force, `None` when
/// it cannot be read.
pub fn raise_fd_limit() -> Option<u64> {
    let before = soft_limit();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            if before.is_some_and(|before| before < now) {
                tracing::info!(before, now, "raised the open-file limit");
            }
            Some(now)
        }
        Err(error) => {
            tracing::warn!(%error, limit = before, "cannot raise the open-file limit");
            before
        }
    }
}

/// The default connection cap under a soft fd limit `nofile`:
/// `max(nofile - pool_size - 128, nofile / 2)`, so that the database pool
/// and the server's own files always find a descriptor.
pub fn max_connections_for(nofile: u64, pool_size: usize) -> usize {
    let reserved = RESERVED.saturating_add(u64::try_from(pool_size).unwrap_or(u64::MAX));
    let cap = nofile.saturating_sub(reserved).max(nofile / 2).max(1);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The soft RLIMIT_NOFILE, when there is one.
pub(super) fn soft_limit() -> Option<u64> {
    #[cfg(unix)]
    return rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _hard)| soft);
    #[cfg(not(unix))]
    return None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_pool_and_the_servers_own_files() {
        assert_eq!(max_connections_for(1024, 16), 1024 - 16 - 128);
        assert_eq!(max_connections_for(1_048_576, 16), 1_048_576 - 144);
        // A tiny limit still admits connections: half of it.
        assert_eq!(max_connections_for(200, 16), 100);
        assert_eq!(max_connections_for(1, 16), 1);
    }
}
