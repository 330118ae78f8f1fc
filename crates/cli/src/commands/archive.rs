use berth_engine::{Engine, EngineError, Result, SaveFormat};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub struct LoadArgs {
    /// Read from a tar archive file (or an OCI layout directory) instead of stdin
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

pub fn load(engine: &Engine, a: LoadArgs) -> Result<i32> {
    let loaded = match &a.input {
        Some(p) if p.is_dir() => engine.load_dir(p)?,
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| EngineError::Invalid(format!("open {}: {e}", p.display())))?;
            engine.load(f)?
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(EngineError::Invalid(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            engine.load(stdin)?
        }
    };
    if !a.quiet {
        for l in loaded {
            match l.reference {
                Some(r) => println!("Loaded image: {r}"),
                None => println!("Loaded image ID: {}", l.id),
            }
        }
    }
    Ok(0)
}

#[derive(Args)]
pub struct SaveArgs {
    /// Write to a file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// docker-archive (default), oci-archive or oci-dir (a directory, needs -o)
    #[arg(long, default_value = "docker-archive")]
    format: String,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn save(engine: &Engine, a: SaveArgs) -> Result<i32> {
    let format: SaveFormat = a.format.parse()?;
    if format == SaveFormat::OciDir {
        let dir = a
            .output
            .ok_or_else(|| EngineError::Invalid("--format oci-dir needs -o DIRECTORY".into()))?;
        engine.save_dir(&a.images, &dir)?;
        return Ok(0);
    }
    match &a.output {
        Some(p) => engine.save_file(&a.images, format, p)?,
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err(EngineError::Invalid(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                ));
            }
            engine.save(&a.images, format, stdout.lock())?;
        }
    }
    Ok(0)
}

#[derive(Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)
    #[arg(short, long)]
    change: Vec<String>,
    /// Set the commit message of the image
    #[arg(short, long)]
    message: Option<String>,
    /// A tarball file, or - for stdin
    file: String,
    /// Name the image REPOSITORY[:TAG]
    reference: Option<String>,
}

pub fn import(engine: &Engine, a: ImportArgs) -> Result<i32> {
    let id = if a.file == "-" {
        engine.import(
            std::io::stdin(),
            a.reference.as_deref(),
            &a.change,
            a.message.as_deref(),
        )?
    } else {
        let f = std::fs::File::open(&a.file)
            .map_err(|e| EngineError::Invalid(format!("open {}: {e}", a.file)))?;
        engine.import(f, a.reference.as_deref(), &a.change, a.message.as_deref())?
    };
    println!("{id}");
    Ok(0)
}
