//! `floodgate info`: print what a .torrent holds.

use std::path::PathBuf;

use floodgate_engine::http::redact;
use floodgate_engine::magnet::Magnet;

/// Arguments of `info`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let meta = super::read_torrent(&args.torrent)?;
    let mut magnet = Magnet::new(meta.info_hash());
    magnet.name = Some(meta.name().to_string());
    magnet.trackers = meta.trackers().into_iter().flatten().collect();
    let files: Vec<_> = meta
        .files()
        .iter()
        .map(|f| serde_json::json!({ "path": f.path.to_string_lossy(), "length": f.length }))
        .collect();
    // Shown without credentials or query, like every URL the project prints.
    let web_seeds: Vec<String> = meta.url_list.iter().map(|w| redact(w)).collect();
    if args.json {
        let v = serde_json::json!({
            "info_hash": meta.info_hash().to_hex(),
            "name": meta.name(),
            "total_length": meta.total_length(),
            "piece_length": meta.piece_length(),
            "pieces": meta.piece_count(),
            "private": meta.is_private(),
            "trackers": meta.trackers(),
            "files": files,
            "web_seeds": web_seeds,
            "magnet": magnet.to_uri(),
        });
        println!("{v}");
        return Ok(());
    }
    println!("name:         {}", meta.name());
    println!("info hash:    {}", meta.info_hash());
    println!("size:         {} bytes", meta.total_length());
    println!("pieces:       {} x {} bytes", meta.piece_count(), meta.piece_length());
    println!("private:      {}", meta.is_private());
    for tier in meta.trackers() {
        println!("tracker tier: {}", tier.join(" "));
    }
    for w in &web_seeds {
        println!("web seed:     {w}");
    }
    for f in meta.files() {
        println!("file:         {} ({} bytes)", f.path.display(), f.length);
    }
    println!("magnet:       {}", magnet.to_uri());
    Ok(())
}
