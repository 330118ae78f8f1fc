use berth_runtime::{Result, Runtime, RuntimeError};
use clap::Args;
use std::process::Command;

#[derive(Args)]
pub struct PsArgs {
    /// table (the output of `ps`, filtered) or json (an array of pids)
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// The container's ID, then options for ps (default -ef): as runc's,
    /// flag parsing stops at the ID (`ps ID -h` is ps's -h)
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, value_name = "ID")]
    id_and_ps_args: Vec<String>,
}

pub fn run(rt: &Runtime, a: PsArgs) -> Result<i32> {
    let (id, ps_args) = match a.id_and_ps_args.split_first() {
        Some((id, rest)) => (id.as_str(), rest.to_vec()),
        None => ("", Vec::new()),
    };
    let pids = rt.pids(id)?;
    if a.format == "json" {
        println!("{}", serde_json::json!(pids));
        return Ok(0);
    }
    let args = if ps_args.is_empty() {
        vec!["-ef".to_owned()]
    } else {
        ps_args
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| RuntimeError::Other(format!("run ps: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(0);
    };
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| RuntimeError::Other("ps output has no PID column".into()))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}
