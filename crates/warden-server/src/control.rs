//! The local control socket: how `wardend recover-account` on the server host reaches the
//! running server. A Unix socket created with mode 0600, so only the server's own user (and
//! root) can connect; it never listens on the network. One JSON line in, one JSON line out.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::services::{Context, recovery};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlRequest {
    Recover { account: String },
    Superuser { account: String, grant: bool },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlResponse {
    Password(String),
    Done(String),
    Error(String),
}

/// Binds the socket (replacing a stale one) with mode 0600.
///
/// A socket takes its first mode from the process's umask, and changing the umask would
/// change it for every thread at once. So the socket is bound inside a fresh directory that
/// only this user may enter, made 0600 there, and only then renamed to `path`: no other user
/// ever sees it with a looser mode, whatever the umask.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut dir = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.recursive(true).create(parent)?;
    let private = private_dir(parent)?;
    let staged = private.join("control.sock");
    let bound = UnixListener::bind(&staged)
        .and_then(|listener| std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600)).map(|()| listener))
        .and_then(|listener| std::fs::rename(&staged, path).map(|()| listener));
    let _ = std::fs::remove_file(&staged);
    std::fs::remove_dir(&private)?;
    bound
}

/// A new, empty directory beside the socket, mode 0700 (created, never reused: `create`
/// fails if the name exists).
fn private_dir(parent: &Path) -> std::io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let mut attempt = 0u32;
    loop {
        let dir = parent.join(format!(".wardend-{}-{attempt}", std::process::id()));
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Answers control requests until the task is dropped.
pub async fn serve(listener: UnixListener, ctx: Context) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &ctx).await {
                tracing::warn!(error = %e, "control request failed");
            }
        });
    }
}

async fn handle(stream: UnixStream, ctx: &Context) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).take_line(&mut line).await?;
    let response = match serde_json::from_str::<ControlRequest>(&line) {
        Ok(ControlRequest::Recover { account }) => match recovery::recover_account(ctx, &account).await {
            Ok(password) => {
                tracing::info!(account, "break-glass account recovered from the host");
                ControlResponse::Password(password.expose().to_owned())
            }
            Err(e) => ControlResponse::Error(e.to_string()),
        },
        Ok(ControlRequest::Superuser { account, grant }) => match recovery::set_superuser(ctx, &account, grant).await {
            Ok(outcome) => {
                tracing::info!(account, grant, "idm_superusers changed from the host");
                ControlResponse::Done(format!("{account} {outcome} idm_superusers"))
            }
            Err(e) => ControlResponse::Error(e.to_string()),
        },
        Err(e) => ControlResponse::Error(format!("bad control request: {e}")),
    };
    let mut out = serde_json::to_string(&response).map_err(std::io::Error::other)?;
    out.push('\n');
    write.write_all(out.as_bytes()).await
}

trait TakeLine {
    async fn take_line(&mut self, buf: &mut String) -> std::io::Result<usize>;
}

impl<R: tokio::io::AsyncRead + Unpin> TakeLine for BufReader<R> {
    /// Reads one line of at most 4 KiB.
    async fn take_line(&mut self, buf: &mut String) -> std::io::Result<usize> {
        let n = tokio::io::AsyncReadExt::take(&mut *self, 4096).read_line(buf).await?;
        Ok(n)
    }
}

/// Sends `request` to the running server; `Ok(None)` if no server answers on `path`.
pub async fn request(path: &PathBuf, request: &ControlRequest) -> anyhow::Result<Option<String>> {
    let Ok(stream) = UnixStream::connect(path).await else { return Ok(None) };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await?;
    match serde_json::from_str(&answer)? {
        ControlResponse::Password(text) | ControlResponse::Done(text) => Ok(Some(text)),
        ControlResponse::Error(e) => anyhow::bail!("{e}"),
    }
}
