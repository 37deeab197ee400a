//! Random bytes from the kernel.

use std::io;

/// `getrandom(2)`: fills `buf` from the kernel's CSPRNG, retrying after `EINTR`
/// and short reads. Blocks only until the kernel's pool is first initialised
/// (early boot).
///
/// # Errors
/// The system call's error (`ENOSYS` on a very old kernel, `EPERM` under some
/// seccomp filters); `buf` is then partly filled.
///
/// ```
/// let mut key = [0u8; 32];
/// mproc_shm::sys::random_bytes(&mut key).unwrap();
/// ```
#[doc(alias = "getrandom")]
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
