//! `floodgate make-torrent`: hash a file or directory into a v1 .torrent.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use floodgate_engine::hash::hash_pieces;
use floodgate_engine::layout::{FileSpan, Layout};
use floodgate_engine::metainfo::{piece_length_for, MetainfoBuilder};

/// Arguments of `make-torrent`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The file or directory to share.
    pub path: PathBuf,
    /// Where to write the .torrent.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Piece size in bytes (a power of two; default chosen from the total size).
    #[arg(long)]
    pub piece_size: Option<u32>,
    /// Tracker announce URL (repeatable; each in a tier of its own).
    #[arg(long = "tracker")]
    pub trackers: Vec<String>,
    /// BEP 19 web seed URL (repeatable).
    #[arg(long = "web-seed")]
    pub web_seeds: Vec<String>,
    /// Hashing threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Mark the torrent private (BEP 27).
    #[arg(long)]
    pub private: bool,
}

/// Runs the command.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let path = args.path.canonicalize().with_context(|| format!("cannot open {}", args.path.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("the path has no usable (UTF-8) file name")?
        .to_string();
    let root = path.parent().context("cannot share the file system root")?;
    let files = if path.is_dir() { list_dir(&path)? } else { Vec::new() };
    let total: u64 =
        if path.is_dir() { files.iter().map(|f| f.length).sum() } else { path.metadata()?.len() };
    if total == 0 {
        bail!("{} holds no data", path.display());
    }
    let piece_length = args.piece_size.unwrap_or_else(|| piece_length_for(total));
    if !piece_length.is_power_of_two() || piece_length < 16 * 1024 {
        bail!("--piece-size must be a power of two of at least 16384, got {piece_length}");
    }
    // The layout as stored: every path starts with the torrent's name, under `root`.
    let spans = if path.is_dir() {
        files.iter().map(|f| FileSpan { path: Path::new(&name).join(&f.path), length: f.length }).collect()
    } else {
        vec![FileSpan { path: name.clone().into(), length: total }]
    };
    let layout = Layout::new(spans, piece_length)?;
    let started = Instant::now();
    let hashes = hash_pieces(&layout, root, args.threads).context("hashing failed")?;
    let secs = started.elapsed().as_secs_f64();
    let mut builder = if path.is_dir() {
        MetainfoBuilder::multi_file(&name, files, piece_length)
    } else {
        MetainfoBuilder::single_file(&name, total, piece_length)
    }
    .piece_hashes(hashes)
    .created_by(concat!("floodgate/", env!("CARGO_PKG_VERSION")))
    .private(args.private);
    for t in &args.trackers {
        builder = builder.tracker(t);
    }
    for w in &args.web_seeds {
        builder = builder.web_seed(w);
    }
    let (bytes, meta) = builder.build()?;
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "{}: {} bytes, {} pieces of {} bytes, hashed in {:.2} s ({:.0} MB/s)",
        args.output.display(),
        total,
        meta.piece_count(),
        piece_length,
        secs,
        total as f64 / secs.max(1e-9) / 1e6
    );
    println!("{}", meta.info_hash());
    Ok(())
}

/// Every regular file under `dir`, as paths relative to it, sorted (a stable stream order).
fn list_dir(dir: &Path) -> anyhow::Result<Vec<FileSpan>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let rel = entry.path().strip_prefix(dir)?.to_path_buf();
                out.push(FileSpan { path: rel, length: entry.metadata()?.len() });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
