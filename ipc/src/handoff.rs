//! How this crate's carriers move a [`ShmBox`](mproc_shm::ShmBox): by name,
//! as any serde value, and back to the sender when a send fails.
//!
//! A `Queue<ShmBox<[u8]>>`, a `Connection` (socket or shared-memory pipe) and
//! anything that serialises with postcard carry a box as its name, length and
//! claim ticket, a few dozen bytes whatever the box's size; the receiver maps
//! the same memory (see `mproc_shm::shm_box`). Serialising gives the box away,
//! so a put or send that fails after serialising calls [`reclaim`] to make the
//! boxes in the item the sender's again: the item a `PutError` hands back, or
//! the one `Connection::send` borrowed, is whole.

use serde::Serialize;

/// The send of `item` failed after it was encoded: the boxes in it are the
/// sender's again. Costs nothing in a process that never sent a box.
#[cold]
pub(crate) fn reclaim<T: Serialize + ?Sized>(item: &T) {
    mproc_shm::shm_box::reclaim_unsent(|| {
        // Only the boxes' side effect counts, not the size.
        let _ = postcard::serialize_with_flavor::<T, postcard::ser_flavors::Size, usize>(
            item,
            postcard::ser_flavors::Size::default(),
        );
    });
}
