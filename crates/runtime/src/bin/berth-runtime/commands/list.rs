use berth_runtime::{Result, Runtime};
use clap::Args;

#[derive(Args)]
pub struct ListArgs {
    /// table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// Print only the IDs
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(rt: &Runtime, a: ListArgs) -> Result<i32> {
    let all = rt.list()?;
    if a.quiet {
        for (st, _) in &all {
            println!("{}", st.id);
        }
    } else if a.format == "json" {
        let v: Vec<_> = all.iter().map(|(st, s)| st.oci_state(*s)).collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        println!(
            "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for (st, s) in &all {
            let pid = if *s == berth_runtime::state::Status::Stopped {
                0
            } else {
                st.pid
            };
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                st.id,
                pid,
                s,
                st.bundle.display(),
                st.created,
                st.owner
            );
        }
    }
    Ok(0)
}
