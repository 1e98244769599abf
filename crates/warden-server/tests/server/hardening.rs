//! What the outside review attacked at the edge: files and sockets readable by others,
//! connections that never time out, sign-in forms posted from other sites.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

// --- the control socket -------------------------------------------------------------------------

/// The socket is 0600 at its path from the moment it appears there, not after a chmod: a
/// watcher that looks at the path all the time never sees it with a looser mode.
#[test]
fn control_socket_never_appears_with_a_loose_mode() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/wardend.sock");
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (path, done) = (path.clone(), done.clone());
        std::thread::spawn(move || {
            let mut loose = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Ok(meta) = std::fs::symlink_metadata(&path) {
                    let m = meta.permissions().mode() & 0o777;
                    if m & 0o077 != 0 {
                        loose.push(m);
                    }
                }
            }
            loose
        })
    };
    runtime.block_on(async {
        for _ in 0..300 {
            let listener = warden_server::control::bind(&path).unwrap();
            drop(listener);
            std::fs::remove_file(&path).unwrap();
        }
    });
    done.store(true, Ordering::Relaxed);
    let loose = watcher.join().unwrap();
    let seen: Vec<String> = loose.iter().take(5).map(|m| format!("{m:o}")).collect();
    assert!(loose.is_empty(), "the socket was seen {} times with a loose mode: {seen:?}", loose.len());

    // The result: 0600 in a 0700 directory, nothing left beside it, a stale socket replaced.
    runtime.block_on(async {
        let first = warden_server::control::bind(&path).unwrap();
        drop(first);
        let _listener = warden_server::control::bind(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("wardend.sock")]);
        tokio::net::UnixStream::connect(&path).await.unwrap();
    });
}
