//! The one HTTP/1.1 test server on 127.0.0.1 that every test server is built on (the
//! file server of the download tests, the registry proxy of the auth and retry tests,
//! a server that never answers): an accept loop on its own thread that parses each
//! request and hands it to the test's handler, a log of request lines, and a thread
//! that stops when the server is dropped.
//!
//! One request per connection (`Connection: close`); a client that stalls is dropped
//! after 5 s, so a test cannot hang on it. [`Server::requests`] first makes sure every
//! connection opened before the call has been handled, so counting requests is exact.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The path [`Server::requests`] uses to catch up with the accept loop.
const SYNC_PATH: &str = "/.cast-test-sync";

/// One parsed request and the connection to answer it on.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target, e.g. `/v2/`.
    pub path: String,
    /// Header names in lower case, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
    stream: TcpStream,
}

impl Request {
    /// A header's value (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Answers with `status`, `headers` and `body`, then closes the connection.
    pub fn respond(mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = self
            .stream
            .write_all(head.as_bytes())
            .and_then(|()| self.stream.write_all(body))
            .and_then(|()| self.stream.flush());
    }

    /// The server's own `127.0.0.1:PORT` (e.g. for URLs in its answers).
    pub fn server_addr(&self) -> String {
        self.stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    /// The connection, to keep open without answering (a server that never answers).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

/// A running server; stopped and joined on drop.
#[derive(Debug)]
pub struct Server {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server that hands every request to `handler`, one at a time.
    pub fn start(mut handler: impl FnMut(Request) + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap().to_string();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (lines, halt) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let Some(req) = stream.ok().and_then(|s| parse(s).ok()) else {
                    continue;
                };
                if req.path == SYNC_PATH {
                    req.respond(204, &[], b"");
                    continue;
                }
                let scheme = req.header("authorization").unwrap_or("");
                let scheme = scheme.split(' ').next().unwrap_or("");
                lines
                    .lock()
                    .unwrap()
                    .push(format!("{} {} {scheme}", req.method, req.path));
                handler(req);
            }
        });
        Server {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://ADDR/PATH` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// "METHOD PATH AUTH-SCHEME" of every request so far, in order — including those
    /// on connections not yet handled when this was called.
    pub fn requests(&self) -> Vec<String> {
        // Connections are accepted in order: once this one is answered, every earlier
        // one has been handled.
        let mut sync = TcpStream::connect(&self.addr).expect("connect to the test server");
        sync.write_all(format!("GET {SYNC_PATH} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
        let mut answer = Vec::new();
        let _ = sync.read_to_end(&mut answer);
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr); // wake the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request: the head, then `Content-Length` bytes of body.
fn parse(stream: TcpStream) -> std::io::Result<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Request {
        method,
        path,
        headers,
        body,
        stream,
    })
}
