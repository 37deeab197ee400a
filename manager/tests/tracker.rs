//! A process that started a manager and was SIGKILLed leaves no socket
//! directory behind: its server dies with it, and shm's resource tracker
//! removes the directory. Alone in its test binary, so that this process
//! starts no tracker the child would share.

use std::time::Duration;

use mproc_ipc::Connection;
use mproc_manager::{Address, Manager};
use mproc_testkit::{eventually, finish, fork_process};

#[test]
fn killed_manager_owner_leaves_no_socket_directory() {
    let (mut here, mut there) = Connection::pair().unwrap();
    let mut child = fork_process(30, move || {
        let Ok(manager) = Manager::start() else { return 2 };
        let Some(Address::Unix(path)) = manager.address().cloned() else { return 3 };
        let dir = path.parent().expect("the socket is in its directory").to_path_buf();
        if there.send(&dir).is_err() {
            return 4;
        }
        std::mem::forget(manager);
        // SAFETY: the child kills itself: nothing runs after it.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        1
    });
    assert!(here.poll(Some(Duration::from_secs(20))).unwrap(), "the child reported no directory");
    let dir: std::path::PathBuf = here.recv().unwrap();
    assert!(dir.to_string_lossy().contains("mproc-manager-"), "{}", dir.display());
    assert_eq!(finish(&mut child, Duration::from_secs(20)), -libc::SIGKILL);
    assert!(
        eventually(Duration::from_secs(10), || !dir.exists()),
        "{} is still there after its owner was killed",
        dir.display()
    );
}
