//! Downloads over HTTP(S): the sources of `ADD <url>` and kernels pinned by URL.
//!
//! A download streams into a file while its SHA-256 is computed; nothing is held
//! in memory. Transient failures (a server that cannot be reached, a body that
//! breaks off, HTTP 429 and 5xx) are retried with the registry client's
//! [`RetryPolicy`]; every attempt starts the file over. The server's
//! `Last-Modified` is kept, since ADD uses it as the file's mtime as Docker does.
//! A progress bar is drawn on stderr when asked for and stderr is a terminal.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::time::{Duration, UNIX_EPOCH};

use cast_oci::{RetryPolicy, Transient};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

/// What a finished download was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The SHA-256 of the body, lowercase hex.
    pub sha256: String,
    /// The body's length in bytes.
    pub size: u64,
    /// The server's `Last-Modified`, in seconds since the epoch, when it sent one.
    pub last_modified: Option<i64>,
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No connection, or no response.
    #[error("cannot reach the server ({why}); check the address and the network")]
    Unreachable {
        /// Why, as the HTTP client says it.
        why: String,
    },
    /// The server answered with an error status.
    #[error("the server answered HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The body broke off.
    #[error("the download broke off ({why})")]
    Transfer {
        /// Why.
        why: String,
    },
    /// The download could not be stored.
    #[error("cannot store the download")]
    Io {
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl Transient for FetchError {
    fn is_transient(&self) -> bool {
        match self {
            FetchError::Unreachable { .. } | FetchError::Transfer { .. } => true,
            FetchError::Status { status, .. } => *status == 429 || *status >= 500,
            FetchError::Io { .. } => false,
        }
    }
}

/// How long one read (or the wait for the response) may stall before the attempt fails.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Downloads `url` into `file` (truncated first, left at its end), retrying
/// transient failures. Draws a progress bar when `progress` and stderr is a terminal.
pub fn download(url: &str, file: &mut File, progress: bool) -> Result<Download, FetchError> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(IDLE_TIMEOUT)
        .user_agent(concat!("cargo-cast/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Unreachable {
            why: root_cause(&e),
        })?;
    RetryPolicy::default().run(|| attempt(&client, url, file, progress))
}

fn attempt(
    client: &reqwest::blocking::Client,
    url: &str,
    file: &mut File,
    progress: bool,
) -> Result<Download, FetchError> {
    let io_err = |source| FetchError::Io { source };
    file.set_len(0).map_err(io_err)?;
    file.rewind().map_err(io_err)?;
    let response = client
        .get(url)
        .send()
        .map_err(|e| FetchError::Unreachable {
            why: root_cause(&e),
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            status: status.as_u16(),
        });
    }
    let last_modified = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .map(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        });
    let bar = progress_bar(url, response.content_length(), progress);
    let mut body = bar.wrap_read(response);
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(FetchError::Transfer {
                    why: root_cause(&e),
                })
            }
        };
        hash.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(io_err)?;
        size += n as u64;
    }
    bar.finish_and_clear();
    file.flush().map_err(io_err)?;
    Ok(Download {
        sha256: format!("{:x}", hash.finalize()),
        size,
        last_modified,
    })
}

/// The innermost cause of `e` (the HTTP client's outer messages repeat the URL).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(inner) = e.source() {
        e = inner;
    }
    e.to_string()
}

fn progress_bar(url: &str, len: Option<u64>, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let template = if len.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
    } else {
        "{msg} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    let name = url.rsplit('/').next().unwrap_or(url);
    bar.set_message(format!("downloading {name}"));
    bar
}
