//! Runs one Docker credential helper the way the Docker CLI does (protocol of
//! `docker/docker-credential-helpers`): `docker-credential-<name> get`, found on `PATH`,
//! gets the server URL and a newline on stdin (Docker sends no newline; helpers trim
//! whitespace, and shell-script helpers need it for `read`) and prints
//! `{"ServerURL":…,"Username":…,"Secret":…}` on stdout. A helper that exits non-zero
//! with exactly `credentials not found in native keychain` on stdout has no credentials
//! for that server: that is an anonymous pull, not an error. A `Username` of `<token>`
//! makes `Secret` an identity (OAuth refresh) token.
//!
//! The run is bounded: past the timeout the helper is killed and reaped (processes the
//! helper itself started are not tracked). Its output is capped at 1 MiB. A successful
//! reply holds the secret and is never quoted in an error (a malformed one is described
//! only by where the JSON parser gave up); on a failed exit the first line of the helper's
//! output is quoted, as Docker does.

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::auth::Credentials;

/// The prefix of every helper binary.
pub const PREFIX: &str = "docker-credential-";

/// What a helper prints when it has nothing for the server URL.
pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// The user name that marks `Secret` as an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// How much of the helper's stdout and stderr is read.
const MAX_OUTPUT: u64 = 1 << 20;

/// Why a helper gave no usable answer. Displays as the middle of a sentence that starts
/// with the helper's name, e.g. "is not on PATH".
#[derive(Debug)]
pub enum Failure {
    /// No executable `docker-credential-<name>` in any `PATH` directory.
    NotOnPath,
    /// The executable exists but could not be started.
    Spawn(std::io::Error),
    /// Waiting for it failed.
    Wait(std::io::Error),
    /// It exited unsuccessfully (and did not say "credentials not found").
    Exit {
        /// Its exit status.
        status: ExitStatus,
        /// The first line of its stdout (or else stderr), shortened.
        message: String,
    },
    /// It did not finish (or close its output) in time and was killed.
    Timeout(Duration),
    /// It succeeded but its stdout is not the credentials JSON: where the parser gave up
    /// (never the parser's message, which can quote a value).
    BadJson(String),
}

impl Failure {
    /// Whether installing the helper is the fix (rather than repairing it).
    pub fn is_missing(&self) -> bool {
        matches!(self, Failure::NotOnPath)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotOnPath => write!(f, "is not on PATH"),
            Failure::Spawn(e) => write!(f, "could not be started ({e})"),
            Failure::Wait(e) => write!(f, "could not be waited for ({e})"),
            Failure::Exit { status, message } if message.is_empty() => {
                write!(f, "failed ({status})")
            }
            Failure::Exit { status, message } => write!(f, "failed ({status}: {message})"),
            Failure::Timeout(d) => write!(
                f,
                "did not answer within {} s and was killed",
                d.as_secs_f64()
            ),
            Failure::BadJson(e) => write!(f, "printed something other than credentials JSON ({e})"),
        }
    }
}

/// The `get` reply.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

/// `docker-credential-<name>` in the directories of `search_path`, if it is there and
/// (on Unix) executable.
pub fn find(name: &str, search_path: Option<&OsStr>) -> Option<PathBuf> {
    let bin = format!("{PREFIX}{name}");
    std::env::split_paths(search_path?)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(&bin))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &std::path::Path) -> bool {
    p.is_file()
}

/// Runs `docker-credential-<name> get` for `server_url`, found on `search_path` (which
/// is also the helper's own `PATH`), killing it after `timeout`. `Ok(None)`: the helper
/// has no credentials for that server (or an empty user name or secret, which Docker
/// does not send either).
pub fn get(
    name: &str,
    server_url: &str,
    search_path: Option<&OsStr>,
    timeout: Duration,
) -> Result<Option<Credentials>, Failure> {
    let exe = find(name, search_path).ok_or(Failure::NotOnPath)?;
    let mut cmd = Command::new(&exe);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = search_path {
        cmd.env("PATH", p);
    }
    let mut child = spawn(&mut cmd).map_err(Failure::Spawn)?;
    let deadline = Instant::now() + timeout;

    // A URL fits in any pipe buffer: this write does not block. A helper that exits
    // without reading gives EPIPE, which is no reason to ignore its answer.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{server_url}\n").as_bytes());
    }
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());

    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Timeout(timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Wait(e));
            }
        }
    };
    // The helper has exited; something it started may still hold the pipes open.
    let rest = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(200));
    let out = stdout
        .recv_timeout(rest)
        .map_err(|_| Failure::Timeout(timeout))?;
    if !status.success() {
        let text = String::from_utf8_lossy(&out);
        if text.trim() == NOT_FOUND {
            return Ok(None);
        }
        let err = stderr
            .recv_timeout(Duration::from_millis(200))
            .unwrap_or_default();
        let message = first_line(&text)
            .or_else(|| first_line(&String::from_utf8_lossy(&err)))
            .unwrap_or_default();
        return Err(Failure::Exit { status, message });
    }
    parse_reply(&out)
}

/// The credentials in a successful helper's stdout (untrusted: never quoted back).
fn parse_reply(out: &[u8]) -> Result<Option<Credentials>, Failure> {
    let reply: Reply = serde_json::from_slice(out).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Data => "unexpected fields or types",
            serde_json::error::Category::Eof => "unexpected end",
            _ => "syntax error",
        };
        Failure::BadJson(format!("{kind} at line {} column {}", e.line(), e.column()))
    })?;
    if reply.username == TOKEN_USERNAME {
        return Ok((!reply.secret.is_empty()).then(|| Credentials::identity_token(reply.secret)));
    }
    if reply.username.is_empty() || reply.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: reply.username,
        password: reply.secret,
        identity_token: None,
    }))
}

/// Spawns `cmd`, retrying briefly on ETXTBSY: an executable written a moment ago can
/// still be open for writing in a child that another thread forked and has not yet
/// exec'd.
fn spawn(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            r => return r,
        }
    }
}

/// Reads `r` to the end (at most [`MAX_OUTPUT`]) on a thread; the bytes arrive on the
/// returned channel. The thread is never joined: it ends when the pipe closes.
fn read_in_background(r: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(r) = r {
            let _ = r.take(MAX_OUTPUT).read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// The first non-empty line of `s`, at most 200 characters.
fn first_line(s: &str) -> Option<String> {
    let line = s.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    //! Property tests of the helper's reply, untrusted input: bounded for CI by
    //! proptest's default 256 cases (`PROPTEST_CASES` raises it).

    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_output_is_credentials_none_or_an_error_that_quotes_nothing(
            out in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            if let Err(e) = parse_reply(&out) {
                let msg = e.to_string();
                prop_assert!(
                    msg.starts_with("printed something other than credentials JSON ("),
                    "{msg}"
                );
                // Only the parser's position: no byte of the output comes back.
                let detail = msg.split('(').nth(1).unwrap_or("");
                prop_assert!(
                    detail.chars().all(|c| c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || " )".contains(c)),
                    "{msg}"
                );
            }
        }

        #[test]
        fn a_reply_gives_exactly_its_credentials_and_a_broken_one_never_its_secret(
            user in "(?s).{0,20}",
            secret in "[a-zA-Z0-9]{8,24}",
            cut in any::<prop::sample::Index>(),
        ) {
            let json = serde_json::json!({
                "ServerURL": "reg.example",
                "Username": user,
                "Secret": secret,
            })
            .to_string();
            let got = parse_reply(json.as_bytes()).unwrap();
            match got {
                None => prop_assert!(user.is_empty()),
                Some(c) if user == TOKEN_USERNAME => {
                    prop_assert_eq!(c.identity_token.as_deref(), Some(secret.as_str()));
                }
                Some(c) => {
                    prop_assert_eq!((c.username, c.password), (user.clone(), secret.clone()));
                }
            }
            let broken = &json.as_bytes()[..cut.index(json.len())];
            if let Err(e) = parse_reply(broken) {
                prop_assert!(!e.to_string().contains(&secret));
            }
        }
    }
}
