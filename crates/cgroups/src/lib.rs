//! Control groups for berth (placeholder, being written).
