use berth_runtime::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct SpecArgs {
    /// Where to write config.json
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Accepted for runc compatibility; not supported
    #[arg(long)]
    rootless: bool,
}

pub fn run(a: SpecArgs) -> Result<i32> {
    if a.rootless {
        return Err(berth_runtime::RuntimeError::Other(
            "spec --rootless: rootless containers are not supported".into(),
        ));
    }
    berth_runtime::spec::write_spec(&a.bundle, &berth_runtime::spec::default_spec())?;
    Ok(0)
}
