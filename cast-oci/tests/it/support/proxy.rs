//! A tiny HTTP proxy in front of the test registry, on 127.0.0.1, for what the
//! registry itself cannot be made to do: demand Bearer tokens from its own token
//! endpoint (anonymous, or only for given Basic credentials, or — by POST — only for a
//! given OAuth2 refresh token, whose form it records), and answer the next N
//! requests with an error status (to exercise retries). One request per connection
//! (`Connection: close`); it can also pad blob bodies; it records every request line; `Drop` stops and joins it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;

pub const TOKEN: &str = "test-token-123";

/// Behaviour switches and the request log.
#[derive(Default)]
pub struct ProxyState {
    /// Answer this many upcoming `/v2/` requests with `fail_status`.
    pub fail_next: AtomicUsize,
    /// Status used for injected failures (e.g. 503, 429, 500).
    pub fail_status: AtomicU16,
    /// Require `Authorization: Bearer TOKEN` on `/v2/...`.
    pub bearer: bool,
    /// If set, the token endpoint requires these Basic credentials.
    pub token_credentials: Option<(String, String)>,
    /// If set, the token endpoint requires an OAuth2 refresh-token POST with this token.
    pub refresh_token: Option<String>,
    /// The decoded form of every token POST, in order.
    pub token_forms: Mutex<Vec<Vec<(String, String)>>>,
    /// Append junk to every blob body (a registry sending more than declared).
    pub pad_blobs: AtomicBool,
    /// "METHOD PATH AUTH-SCHEME" of every request, in order.
    pub log: Mutex<Vec<String>>,
}

pub struct Proxy {
    pub addr: String,
    pub state: Arc<ProxyState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: &str, state: ProxyState) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(state);
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, up, me) = (
            state.clone(),
            stop.clone(),
            upstream.to_string(),
            addr.clone(),
        );
        let thread = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap();
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(c) = conn {
                    let _ = serve(c, &st, &client, &up, &me);
                }
            }
        });
        Proxy {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr); // wake the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(
    mut c: &TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes())?;
    c.write_all(body)?;
    c.flush()
}

fn serve(
    c: TcpStream,
    st: &ProxyState,
    client: &reqwest::blocking::Client,
    upstream: &str,
    me: &str,
) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(&c);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let auth = get("authorization").unwrap_or_default();
    st.log.lock().unwrap().push(format!(
        "{method} {path} {}",
        auth.split(' ').next().unwrap_or("")
    ));

    if path.starts_with("/token") && method == "POST" {
        let len = get("content-length")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        let form: Vec<(String, String)> = String::from_utf8_lossy(&body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (unescape(k), unescape(v)))
            .collect();
        st.token_forms.lock().unwrap().push(form.clone());
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let wanted = st.refresh_token.as_deref();
        if wanted.is_none()
            || field("grant_type") != Some("refresh_token")
            || field("refresh_token") != wanted
        {
            return respond(&c, 401, &[], b"{\"error\":\"invalid_grant\"}");
        }
        return respond(
            &c,
            200,
            &[("Content-Type".into(), "application/json".into())],
            format!("{{\"access_token\":\"{TOKEN}\",\"expires_in\":300}}").as_bytes(),
        );
    }
    if path.starts_with("/token") {
        if st.refresh_token.is_some() {
            return respond(&c, 401, &[], b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
        }
        if let Some((u, p)) = &st.token_credentials {
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            );
            if auth != want {
                return respond(&c, 401, &[], b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
            }
        }
        return respond(
            &c,
            200,
            &[("Content-Type".into(), "application/json".into())],
            format!("{{\"token\":\"{TOKEN}\"}}").as_bytes(),
        );
    }
    if path.starts_with("/v2/") && st.fail_next.load(Ordering::SeqCst) > 0 {
        st.fail_next.fetch_sub(1, Ordering::SeqCst);
        return respond(
            &c,
            st.fail_status.load(Ordering::SeqCst),
            &[],
            b"injected failure",
        );
    }
    if st.bearer && path.starts_with("/v2/") && auth != format!("Bearer {TOKEN}") {
        let repo = path
            .trim_start_matches("/v2/")
            .split("/manifests/")
            .next()
            .unwrap_or("")
            .split("/blobs/")
            .next()
            .unwrap_or("");
        let challenge = format!("Bearer realm=\"http://{me}/token\",service=\"cast-test\",scope=\"repository:{repo}:pull\"");
        return respond(
            &c,
            401,
            &[("WWW-Authenticate".into(), challenge)],
            b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
        );
    }
    let mut req = client.get(format!("http://{upstream}{path}"));
    if let Some(a) = get("accept") {
        req = req.header("accept", a);
    }
    let resp = match req.send() {
        Ok(r) => r,
        Err(_) => return respond(&c, 502, &[], b"upstream failed"),
    };
    let status = resp.status().as_u16();
    let keep: Vec<(String, String)> = ["content-type", "docker-content-digest", "location"]
        .iter()
        .filter_map(|k| {
            resp.headers()
                .get(*k)
                .and_then(|v| v.to_str().ok())
                .map(|v| (k.to_string(), v.to_string()))
        })
        .collect();
    let mut body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    if st.pad_blobs.load(Ordering::SeqCst) && path.contains("/blobs/") {
        body.extend_from_slice(&[0u8; 100_000]);
    }
    respond(&c, status, &keep, &body)
}

/// `application/x-www-form-urlencoded` value decoding (`+` and `%XX`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
