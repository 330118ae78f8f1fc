//! `checkpoint` and `restore`: runc's commands, which need CRIU. berth-runtime
//! has no CRIU support (its `features` says so with runc's annotation
//! `org.opencontainers.runc.checkpoint.enabled: false`); the commands exist
//! so that a caller gets one clear line instead of a usage text.

use berth_runtime::{Result, RuntimeError};
use clap::Args;

#[derive(Args)]
pub struct CriuArgs {
    /// runc's options and the container ID (all refused alike)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn refuse(what: &str, _a: CriuArgs) -> Result<i32> {
    Err(RuntimeError::Other(format!(
        "{what} is not supported: berth-runtime has no CRIU support \
         (features: org.opencontainers.runc.checkpoint.enabled is false)"
    )))
}
