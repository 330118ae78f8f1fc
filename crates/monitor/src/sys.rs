//! The monitor's one unsafe operation.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor the kernel has just handed to the
/// caller (from dup or SCM_RIGHTS); nothing else may refer to it.
pub fn take_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: per this function's contract the descriptor is open and owned
    // by nothing else, so the OwnedFd becomes its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
