//! `warden export` and `warden import`: the whole directory as NDJSON (docs/transfer.md), to
//! back it up, to seed a server, or to move from SQLite to PostgreSQL.
//!
//! Both stream: an export is written to its file as it arrives, an import is read from its
//! file as it is sent, so a directory of any size passes through a small, fixed amount of
//! memory. An export file may hold password hashes: it is created readable by its owner only.

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use warden_core::api::ImportSummary;

use crate::output::{self, Format, Tabular};
use crate::{CliError, Ctx};

/// Bytes read from the import file per piece sent.
const PIECE: usize = 256 * 1024;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to FILE (created with mode 0600) instead of standard output.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Include password hashes (idm_superuser only).
    #[arg(long)]
    pub include_credentials: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The NDJSON file to import (`-` reads standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Check every line against the server's directory and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn export(ctx: &Ctx, args: &ExportArgs) -> Result<(), CliError> {
    let local = |what: &str, e: io::Error| CliError::Local(format!("cannot {what}: {e}"));
    let mut sink: Box<dyn Write + Send> = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(path).map_err(|e| local(&format!("create {}", path.display()), e))?;
            Box::new(io::BufWriter::new(file))
        }
        _ => Box::new(io::BufWriter::new(io::stdout())),
    };
    // The last bytes seen, to tell a whole export (ending in its end line) from a cut one.
    let mut tail: Vec<u8> = Vec::new();
    let bytes = ctx
        .client
        .export(args.include_credentials, |chunk| {
            tail.extend_from_slice(chunk);
            if tail.len() > 4096 {
                tail.drain(..tail.len() - 4096);
            }
            sink.write_all(chunk)
        })
        .await?;
    sink.flush().map_err(|e| local("write the export", e))?;
    let last = String::from_utf8_lossy(&tail);
    let last = last.trim_end().rsplit('\n').next().unwrap_or_default();
    let Ok(warden_core::transfer::Record::End { records }) = warden_core::transfer::Record::parse_line(last) else {
        return Err(CliError::Local("the export broke off before its end line: the file is incomplete".into()));
    };
    match args.file.as_ref().filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            let shown = serde_json::json!({ "exported": path, "records": records, "bytes": bytes });
            output::done(ctx.format, &shown, &format!("exported {records} records ({bytes} bytes) to {}", path.display()))
        }
        // The export itself is on stdout (NDJSON, one document per line).
        None => Ok(()),
    }
}

pub async fn import(ctx: &Ctx, args: &ImportArgs) -> Result<(), CliError> {
    let from_stdin = args.file.as_os_str() == "-";
    let (reader, size): (Box<dyn Read + Send>, Option<u64>) = if from_stdin {
        (Box::new(io::stdin()), None)
    } else {
        let file = std::fs::File::open(&args.file).map_err(|e| CliError::Local(format!("cannot open {}: {e}", args.file.display())))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let sent = Arc::new(AtomicU64::new(0));
    let progress = io::stderr().is_terminal().then(|| tokio::spawn(show_progress(sent.clone(), size)));
    let body = pieces(reader, sent);
    let result = ctx.client.import(body, args.dry_run).await;
    if let Some(progress) = progress {
        progress.abort();
        eprint!("\r\x1b[K");
    }
    let summary = result?;
    output::item(ctx, &summary)?;
    if matches!(ctx.format, Format::Table) && summary.dry_run {
        output::note("dry run: nothing was written");
    }
    Ok(())
}

/// The file as a stream of pieces, read on a blocking thread, counting what was read.
fn pieces(
    mut reader: Box<dyn Read + Send>,
    sent: Arc<AtomicU64>,
) -> impl futures_util::Stream<Item = io::Result<Vec<u8>>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0; PIECE];
            let piece = match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    Ok(buf)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|piece| (piece, rx)) })
}

/// A progress line on stderr (a terminal), redrawn every quarter second.
async fn show_progress(sent: Arc<AtomicU64>, size: Option<u64>) {
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let done = sent.load(Ordering::Relaxed);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let rate = mib(done) / started.elapsed().as_secs_f64().max(0.001);
        let line = match size {
            Some(total) if total > 0 => {
                format!(
                    "import: {:.0}% sent ({:.1} of {:.1} MiB, {rate:.1} MiB/s)",
                    done as f64 * 100.0 / total as f64,
                    mib(done),
                    mib(total)
                )
            }
            _ => format!("import: {:.1} MiB sent ({rate:.1} MiB/s)", mib(done)),
        };
        eprint!("\r\x1b[K{line}");
        let _ = io::stderr().flush();
    }
}

impl Tabular for ImportSummary {
    const HEADERS: &'static [&'static str] = &["LINES", "BATCHES", "CREATED", "UPDATED", "UNCHANGED", "REVISION", "DRY RUN"];

    fn row(&self) -> Vec<String> {
        vec![
            self.lines.to_string(),
            self.batches.to_string(),
            self.created.to_string(),
            self.updated.to_string(),
            self.unchanged.to_string(),
            self.revision.map_or_else(|| "-".to_owned(), |r| r.to_string()),
            output::yes_no(self.dry_run),
        ]
    }
}
