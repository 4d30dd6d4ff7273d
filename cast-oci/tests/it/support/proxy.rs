//! A tiny HTTP proxy in front of the test registry, on 127.0.0.1, for what the
//! registry itself cannot be made to do: demand Bearer tokens from its own token
//! endpoint (anonymous, or only for given Basic credentials, or — by POST — only for a
//! given OAuth2 refresh token, whose form it records), and answer the next N
//! requests with an error status (to exercise retries); it can also pad blob bodies.
//! Built on the shared test server (`cast_tests::http`), which logs every request line.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cast_tests::http::{self, Request};

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
}

pub struct Proxy {
    pub addr: String,
    pub state: Arc<ProxyState>,
    server: http::Server,
}

impl Proxy {
    pub fn start(upstream: &str, state: ProxyState) -> Proxy {
        let state = Arc::new(state);
        let (st, up) = (state.clone(), upstream.to_string());
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let server = http::Server::start(move |req| serve(req, &st, &client, &up));
        Proxy {
            addr: server.addr.clone(),
            state,
            server,
        }
    }

    /// "METHOD PATH AUTH-SCHEME" of every request so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.server.requests()
    }
}

const UNAUTHORIZED: &[u8] = b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}";

fn serve(req: Request, st: &ProxyState, client: &reqwest::blocking::Client, upstream: &str) {
    let (method, path) = (req.method.as_str(), req.path.clone());
    let auth = req.header("authorization").unwrap_or_default().to_owned();
    if path.starts_with("/token") && method == "POST" {
        let form: Vec<(String, String)> = String::from_utf8_lossy(&req.body)
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
            return req.respond(401, &[], b"{\"error\":\"invalid_grant\"}");
        }
        return req.respond(
            200,
            &[("Content-Type", "application/json")],
            format!("{{\"access_token\":\"{TOKEN}\",\"expires_in\":300}}").as_bytes(),
        );
    }
    if path.starts_with("/token") {
        if st.refresh_token.is_some() {
            return req.respond(401, &[], UNAUTHORIZED);
        }
        if let Some((u, p)) = &st.token_credentials {
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            );
            if auth != want {
                return req.respond(401, &[], UNAUTHORIZED);
            }
        }
        return req.respond(
            200,
            &[("Content-Type", "application/json")],
            format!("{{\"token\":\"{TOKEN}\"}}").as_bytes(),
        );
    }
    if path.starts_with("/v2/") && st.fail_next.load(Ordering::SeqCst) > 0 {
        st.fail_next.fetch_sub(1, Ordering::SeqCst);
        return req.respond(
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
        let me = req.server_addr();
        let challenge = format!("Bearer realm=\"http://{me}/token\",service=\"cast-test\",scope=\"repository:{repo}:pull\"");
        return req.respond(401, &[("WWW-Authenticate", &challenge)], UNAUTHORIZED);
    }
    let mut forward = client.get(format!("http://{upstream}{path}"));
    if let Some(a) = req.header("accept") {
        forward = forward.header("accept", a);
    }
    if !st.bearer && !auth.is_empty() {
        // The upstream registry's own credentials (Basic auth) pass through.
        forward = forward.header("authorization", &auth);
    }
    let resp = match forward.send() {
        Ok(r) => r,
        Err(_) => return req.respond(502, &[], b"upstream failed"),
    };
    let status = resp.status().as_u16();
    let keep: Vec<(&str, String)> = [
        "content-type",
        "docker-content-digest",
        "location",
        "www-authenticate",
    ]
    .into_iter()
    .filter_map(|k| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(|v| (k, v.to_string()))
    })
    .collect();
    let mut body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    if st.pad_blobs.load(Ordering::SeqCst) && path.contains("/blobs/") {
        body.extend_from_slice(&[0u8; 100_000]);
    }
    let headers: Vec<(&str, &str)> = keep.iter().map(|(k, v)| (*k, v.as_str())).collect();
    req.respond(status, &headers, &body)
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
