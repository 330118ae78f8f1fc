//! Container identifiers.

use crate::error::{Result, RuntimeError};
use std::fmt;

/// A container ID as runc accepts it: `[A-Za-z0-9_+.-]+`, not `.` or `..`.
/// Holding one means the string is safe to use as a single path component.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn new(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(RuntimeError::EmptyId);
        }
        let ok = !s.is_empty()
            && s.len() <= 1024
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(RuntimeError::InvalidId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        assert!(ContainerId::new("abc-1.2_3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\0"] {
            assert!(ContainerId::new(bad).is_err(), "{bad:?}");
        }
    }
}
