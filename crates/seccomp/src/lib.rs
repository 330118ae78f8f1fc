//! seccomp for berth (placeholder, being written).
