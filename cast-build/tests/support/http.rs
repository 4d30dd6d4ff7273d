//! A small HTTP/1.1 file server on 127.0.0.1 for download tests: routes set
//! (and changed) by the test, 404 elsewhere, a request count, and a thread that
//! stops when the server is dropped. Every connection is closed after one reply,
//! and a client that stalls is dropped after 5 s, so a test cannot hang on it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One route's reply.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The server; stopped on drop.
pub struct Server {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    requests: Arc<AtomicUsize>,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// A server with no routes yet.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (count, table, halt) = (requests.clone(), routes.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                answer(stream, &table);
            }
        });
        Server {
            addr,
            requests,
            routes,
            stop,
            thread: Some(thread),
        }
    }

    /// Serves `body` at `path` with status 200 and `headers` (replacing the route).
    pub fn serve(&self, path: &str, body: impl Into<Vec<u8>>, headers: &[(&str, &str)]) {
        self.reply(path, 200, body, headers);
    }

    /// Answers `path` with `status`.
    pub fn reply(
        &self,
        path: &str,
        status: u16,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) {
        let reply = Reply {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.into(),
        };
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    /// `http://ADDR/PATH` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn answer(mut stream: TcpStream, routes: &Mutex<HashMap<String, Reply>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("");
    let reply = routes.lock().unwrap().get(path).cloned().unwrap_or(Reply {
        status: 404,
        headers: Vec::new(),
        body: b"no such file".to_vec(),
    });
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(&reply.body);
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
