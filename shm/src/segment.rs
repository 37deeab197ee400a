//! `Segment`: one `MAP_SHARED` mapping, anonymous (memfd) or named (`/dev/shm`).
//!
//! An anonymous segment is a memfd: the kernel frees it when the last fd and the
//! last mapping are gone, so it cannot leak, and children inherit it on fork or
//! receive its fd (inherited across exec for spawn, or by `SCM_RIGHTS`). A named
//! segment is made by the `shared_memory` crate with `shm_open`; unrelated
//! processes open it by name, and its creator (the owner) unlinks it on drop.
//!
//! A `Segment` is a cheap handle: clones share one mapping, which is unmapped
//! when the last clone in this process drops.
//!
//! # References
//! `memfd_create(2)`, `mmap(2)`, `shm_open(3)`.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};

use rustix::fs::{self as rfs, MemfdFlags};
use rustix::mm::{self, MapFlags, ProtFlags};
use serde::{Deserialize, Serialize};

use crate::{Exports, Result, Share, ShmError};

/// The largest segment mproc will create: 1 TiB, far beyond any real use, so a
/// negative size converted by mistake is an error, not an `ENOMEM` later.
pub const MAX_SEGMENT: usize = 1 << 40;

/// A shared-memory segment mapped into this process.
///
/// ```
/// use mproc_shm::Segment;
/// let seg = Segment::anonymous(4096).unwrap();
/// assert_eq!(seg.len(), 4096);
/// // SAFETY: the segment is 4096 bytes long and nobody else holds it.
/// unsafe { seg.as_ptr().write(7) };
/// ```
#[derive(Clone)]
pub struct Segment {
    inner: Arc<Inner>,
}

struct Inner {
    ptr: NonNull<u8>,
    len: usize,
    backing: Backing,
}

enum Backing {
    /// An anonymous memfd; we own the mapping and the fd.
    Memfd { fd: OwnedFd, ino: u64 },
    /// A named segment; `shared_memory::Shmem` owns the mapping.
    Named { _shmem: shared_memory::Shmem, name: String },
}

// SAFETY: the mapping is plain shared memory with no thread affinity. `Shmem`
// holds a raw pointer and an fd, both usable from any thread; every access to the
// memory goes through atomics or through `unsafe` views that state their own
// synchronisation contract.
unsafe impl Send for Inner {}
// SAFETY: as for `Send`: `&Inner` gives out only the address and the length.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        match &mut self.backing {
            Backing::Memfd { .. } => {
                // SAFETY: `ptr`/`len` are exactly the mapping made in `map_fd`, and this is
                // the last reference to it (Inner is only reachable through the Arc).
                let r = unsafe { mm::munmap(self.ptr.as_ptr().cast(), self.len) };
                debug_assert!(r.is_ok(), "munmap failed: {r:?}");
            }
            Backing::Named { _shmem: shmem, name } => {
                // The owner unlinks the name, then tells the tracker (in this
                // order, so no moment exists where a death would leak it).
                if shmem.is_owner() {
                    shmem.set_owner(false);
                    let _ = Segment::unlink(name);
                }
            }
        }
        // The memfd closes with `fd`; a named `Shmem` unmaps in its own Drop.
    }
}

impl Segment {
    /// Creates an anonymous segment of `len` bytes, zero-filled.
    ///
    /// `memfd_create(2)` + `ftruncate(2)` + `mmap(MAP_SHARED)`. The fd is
    /// close-on-exec; spawn passes it on through [`Exports`].
    #[doc(alias = "memfd_create")]
    pub fn anonymous(len: usize) -> Result<Segment> {
        check_len("anonymous segment", len)?;
        let fd = rfs::memfd_create("mproc", MemfdFlags::CLOEXEC)
            .map_err(|e| ShmError::os("memfd_create", format!("segment of {len} bytes"), e))?;
        rfs::ftruncate(&fd, len as u64)
            .map_err(|e| ShmError::os("ftruncate", format!("memfd segment of {len} bytes"), e))?;
        Self::map_fd(fd, len)
    }

    /// Maps a memfd (or any shareable file) received from elsewhere, e.g. by
    /// `SCM_RIGHTS`. Its size is read with `fstat`.
    pub fn from_fd(fd: OwnedFd) -> Result<Segment> {
        let st = rfs::fstat(&fd).map_err(|e| ShmError::os("fstat", "received segment fd", e))?;
        let len = usize::try_from(st.st_size).unwrap_or(0);
        check_len("received segment", len)?;
        Self::map_fd(fd, len)
    }

    fn map_fd(fd: OwnedFd, len: usize) -> Result<Segment> {
        let ino = rfs::fstat(&fd).map_err(|e| ShmError::os("fstat", "segment fd", e))?.st_ino;
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint) cannot alias
        // any Rust object; `fd` is a valid open file of at least `len` bytes.
        let ptr = unsafe {
            mm::mmap(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &fd, 0)
        }
        .map_err(|e| ShmError::os("mmap", format!("segment of {len} bytes"), e))?;
        let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap never returns null on success");
        Ok(Segment { inner: Arc::new(Inner { ptr, len, backing: Backing::Memfd { fd, ino } }) })
    }

    /// Creates a named segment of `len` bytes; an error if `name` exists already.
    ///
    /// Like Python's `SharedMemory(name, create=True, size=len)`. This process owns
    /// it: the name is unlinked when the last clone of the returned handle drops
    /// (call [`Segment::unlink`] earlier if you like). `name` is a plain name
    /// without slashes, e.g. `"mproc-demo"`.
    pub fn create(name: &str, len: usize) -> Result<Segment> {
        check_name(name)?;
        check_len("named segment", len)?;
        let shmem = shared_memory::ShmemConf::new().os_id(os_name(name)).size(len).create().map_err(|e| match e {
            shared_memory::ShmemError::MappingIdExists => ShmError::Exists { name: name.to_owned() },
            e => ShmError::os("shm_open", format!("named segment {name:?} of {len} bytes"), std::io::Error::other(e)),
        })?;
        // Unlinked by the tracker if this process dies before it unlinks.
        crate::tracker::register(name);
        Ok(Self::from_shmem(shmem, name))
    }

    /// Creates a named segment of `len` bytes that outlives this program: an
    /// error if `name` exists already. CPython 3.13's
    /// `SharedMemory(name, create=True, size=len, track=False)`.
    ///
    /// Unlike [`Segment::create`], nothing removes it: not the drop of the
    /// last handle, not the resource tracker when the process tree dies. It
    /// stays in `/dev/shm` (holding its memory) until someone calls
    /// [`Segment::unlink`] with its name — a later run of the program, the
    /// process that consumes it, or an operator (`rm /dev/shm/<name>`).
    /// That duty is the caller's: pick a name the unlinking side can know.
    ///
    /// ```
    /// use mproc_shm::Segment;
    ///
    /// let name = format!("mproc-doc-untracked-{}", std::process::id());
    /// let seg = Segment::create_untracked(&name, 4096)?;
    /// // SAFETY: nobody else maps the segment yet.
    /// unsafe { seg.as_ptr().write(42) };
    /// drop(seg);
    /// // Still there: another program could open it now.
    /// let again = Segment::open(&name)?;
    /// // SAFETY: the byte was written above and nobody writes it now.
    /// assert_eq!(unsafe { again.as_ptr().read() }, 42);
    /// Segment::unlink(&name)?; // the cleanup duty
    /// # Ok::<(), mproc_shm::ShmError>(())
    /// ```
    pub fn create_untracked(name: &str, len: usize) -> Result<Segment> {
        check_name(name)?;
        check_len("named segment", len)?;
        let mut shmem =
            shared_memory::ShmemConf::new().os_id(os_name(name)).size(len).create().map_err(|e| match e {
                shared_memory::ShmemError::MappingIdExists => ShmError::Exists { name: name.to_owned() },
                e => {
                    ShmError::os("shm_open", format!("named segment {name:?} of {len} bytes"), std::io::Error::other(e))
                }
            })?;
        // Not the owner: neither this handle's drop nor `Shmem`'s unlinks it,
        // and the tracker never hears of it.
        shmem.set_owner(false);
        Ok(Self::from_shmem(shmem, name))
    }

    /// Opens an existing named segment; an error if there is none of that name.
    pub fn open(name: &str) -> Result<Segment> {
        check_name(name)?;
        let shmem = shared_memory::ShmemConf::new().os_id(os_name(name)).open().map_err(|e| match e {
            shared_memory::ShmemError::MapOpenFailed(errno) if errno == libc::ENOENT as u32 => {
                ShmError::NotFound { name: name.to_owned() }
            }
            e => ShmError::os("shm_open", format!("named segment {name:?}"), std::io::Error::other(e)),
        })?;
        Ok(Self::from_shmem(shmem, name))
    }

    fn from_shmem(shmem: shared_memory::Shmem, name: &str) -> Segment {
        let ptr = NonNull::new(shmem.as_ptr()).expect("shared_memory maps non-null");
        let len = shmem.len();
        Segment {
            inner: Arc::new(Inner { ptr, len, backing: Backing::Named { _shmem: shmem, name: name.to_owned() } }),
        }
    }

    /// Removes the name of a named segment from `/dev/shm`; mappings stay valid.
    /// Like Python's `SharedMemory.unlink`. An error if no such name exists.
    /// Any process may unlink any segment, including one made with
    /// [`Segment::create_untracked`] by a program that has since ended.
    #[doc(alias = "shm_unlink")]
    pub fn unlink(name: &str) -> Result<()> {
        check_name(name)?;
        rustix::shm::unlink(os_name(name).as_str()).map_err(|e| {
            if e == rustix::io::Errno::NOENT {
                ShmError::NotFound { name: name.to_owned() }
            } else {
                ShmError::os("shm_unlink", format!("named segment {name:?}"), e)
            }
        })?;
        crate::tracker::unregister(name);
        Ok(())
    }

    /// The base address of the mapping in this process. Other processes map the
    /// same segment at other addresses: store offsets, never pointers.
    pub fn as_ptr(&self) -> *mut u8 {
        self.inner.ptr.as_ptr()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// Always false: a segment has at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The name of a named segment, `None` for an anonymous one.
    pub fn name(&self) -> Option<&str> {
        match &self.inner.backing {
            Backing::Named { name, .. } => Some(name),
            Backing::Memfd { .. } => None,
        }
    }

    /// The memfd of an anonymous segment, to pass to another process.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner.backing {
            Backing::Memfd { fd, .. } => Some(fd.as_fd()),
            Backing::Named { .. } => None,
        }
    }

    /// True when both handles share one mapping.
    pub fn same(&self, other: &Segment) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Checks that `len` bytes at `offset` lie inside the segment and that
    /// `offset` is a multiple of `align`; returns the address.
    pub fn check_range(&self, what: &'static str, offset: usize, len: usize, align: usize) -> Result<NonNull<u8>> {
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > self.len()) {
            return Err(ShmError::OutOfBounds {
                what,
                offset,
                len,
                segment: self.to_string(),
                segment_len: self.len(),
            });
        }
        if align > 1 && (self.as_ptr() as usize + offset) % align != 0 {
            return Err(ShmError::Misaligned { what, offset, align });
        }
        // SAFETY: offset + len <= self.len(), so the result stays inside the mapping.
        Ok(unsafe { NonNull::new_unchecked(self.as_ptr().add(offset)) })
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.backing {
            Backing::Named { name, .. } => write!(f, "{name:?}"),
            Backing::Memfd { fd, .. } => write!(f, "memfd:{}", fd.as_raw_fd()),
        }
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment").field("id", &format_args!("{self}")).field("len", &self.len()).finish()
    }
}

fn check_len(what: &'static str, len: usize) -> Result<()> {
    if len == 0 {
        return Err(ShmError::ZeroSize { what });
    }
    if len > MAX_SEGMENT {
        return Err(ShmError::TooLarge { what, size: len, limit: MAX_SEGMENT });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else if name.len() > 250 {
        "it is longer than 250 bytes"
    } else {
        return Ok(());
    };
    Err(ShmError::InvalidName { name: name.to_owned(), reason })
}

fn os_name(name: &str) -> String {
    format!("/{name}")
}

/// How a [`Segment`] is named in a spawned child.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum SegmentToken {
    /// An anonymous segment: the fd number the child inherits, and the inode
    /// number that fd must have there (a stale or foreign token is refused).
    Memfd {
        /// The inherited fd number.
        fd: RawFd,
        /// The memfd's inode number.
        ino: u64,
        /// The length in bytes.
        len: u64,
    },
    /// A named segment, opened by name.
    Named {
        /// The segment's name.
        name: String,
    },
}

/// Segments imported into this process, by inode, so that many handles on one
/// memfd share one mapping and the inherited fd is taken over once.
fn imported() -> &'static Mutex<HashMap<u64, Segment>> {
    static IMPORTED: OnceLock<Mutex<HashMap<u64, Segment>>> = OnceLock::new();
    IMPORTED.get_or_init(Default::default)
}

impl Share for Segment {
    type Token = SegmentToken;

    fn export(&self, exports: &mut Exports) -> Result<SegmentToken> {
        match &self.inner.backing {
            Backing::Memfd { fd, ino } => {
                exports.inherit(fd.as_fd());
                Ok(SegmentToken::Memfd { fd: fd.as_raw_fd(), ino: *ino, len: self.len() as u64 })
            }
            Backing::Named { name, .. } => Ok(SegmentToken::Named { name: name.clone() }),
        }
    }

    fn import(token: SegmentToken) -> Result<Segment> {
        match token {
            SegmentToken::Named { name } => Segment::open(&name),
            SegmentToken::Memfd { fd, ino, len } => {
                let bad = |detail: String| ShmError::BadToken { what: "segment", detail };
                // Received under another number (SCM_RIGHTS): that fd is this handle's
                // alone, so it is taken over and the segment is not kept in the table,
                // which would hold its mapping and fd for the life of the process (a
                // process that receives many handles, e.g. one pipe per manager
                // connection, would never get them back). Nor is the table's lock
                // taken: a fork from another thread while it is held would leave the
                // child's copy locked.
                if let Some(owned) = crate::share::take_received_fd(fd) {
                    let st = rfs::fstat(&owned).map_err(|e| bad(format!("received fd for {fd}: {e}")))?;
                    if st.st_ino != ino || (st.st_size as u64) < len {
                        return Err(bad(format!(
                            "the fd received for {fd} is inode {} of {} bytes, the token names inode {ino} of {len} \
                             bytes",
                            st.st_ino, st.st_size
                        )));
                    }
                    return Segment::map_fd(owned, len as usize);
                }
                // Inherited at `fd`.
                let mut map = crate::sys::lock(imported());
                if let Some(seg) = map.get(&ino) {
                    return Ok(seg.clone());
                }
                // SAFETY: fstat and dup on an fd number we do not own are sound: at worst
                // it is closed (EBADF) or another file, and both are checked below; the
                // borrow ends before this function returns.
                let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
                let st = rfs::fstat(borrowed).map_err(|e| bad(format!("fd {fd} was not inherited: {e}")))?;
                // A segment may map only a prefix of its memfd (a queue keeps its
                // large items in the file past the part every handle maps).
                if st.st_ino != ino || (st.st_size as u64) < len {
                    return Err(bad(format!(
                        "fd {fd} is inode {} of {} bytes, the token names inode {ino} of {len} bytes (stale token?)",
                        st.st_ino, st.st_size
                    )));
                }
                // The inherited fd is duplicated, not taken over: in the exporting process
                // itself (or after a second import) the number is owned by another handle.
                let owned = rustix::io::fcntl_dupfd_cloexec(borrowed, 0)
                    .map_err(|e| ShmError::os("fcntl(F_DUPFD_CLOEXEC)", format!("inherited fd {fd}"), e))?;
                let seg = Segment::map_fd(owned, len as usize)?;
                map.insert(ino, seg.clone());
                Ok(seg)
            }
        }
    }
}
