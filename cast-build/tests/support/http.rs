//! A file server on 127.0.0.1 for download tests (on the shared test server,
//! `cast_tests::http`): routes set (and changed) by the test, 404 elsewhere, and an
//! exact request count.

use cast_tests::http;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One route's reply.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The server; stopped on drop.
pub struct Server {
    server: http::Server,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
}

impl Server {
    /// A server with no routes yet.
    pub fn start() -> Server {
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let table = routes.clone();
        let server = http::Server::start(move |req| {
            let reply = table.lock().unwrap().get(&req.path).cloned();
            match reply {
                Some(r) => {
                    let headers: Vec<(&str, &str)> = r
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    req.respond(r.status, &headers, &r.body)
                }
                None => req.respond(404, &[], b"no such file"),
            }
        });
        Server { server, routes }
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
        self.server.url(path)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.server.requests().len()
    }
}
