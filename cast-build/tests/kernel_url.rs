//! `kernel = { url, sha256 }`: the kernel is downloaded from a server on 127.0.0.1,
//! verified against the pin, prepared once into the cache (a second build makes no
//! request), and a wrong pin or a missing file is an error that says what to do.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use cast_build::config::KernelSpec;
use cast_build::kernel::{bundle, KernelError};
use sha2::{Digest, Sha256};

/// Serves `body` at `/vmlinux` (404 elsewhere) until dropped; counts requests.
struct Server {
    addr: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(body: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                r.fetch_add(1, Ordering::SeqCst);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let found = String::from_utf8_lossy(&head).starts_with("GET /vmlinux ");
                let (status, data): (&str, &[u8]) = if found {
                    ("200 OK", &body)
                } else {
                    ("404 Not Found", b"no such file")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    data.len()
                );
                let _ = stream.write_all(data);
            }
        });
        Server {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn vmlinux() -> Vec<u8> {
    let b =
        cast_kernel::KernelBundle::locate(None).expect("a kernel bundle: run `cargo xtask kernel`");
    std::fs::read(b.kernel_path()).unwrap()
}

#[test]
fn a_pinned_kernel_url_is_downloaded_once_and_verified() {
    let body = vmlinux();
    let sha = format!("{:x}", Sha256::digest(&body));
    let server = Server::start(body);
    let cache = tempfile::tempdir().unwrap();
    let spec = KernelSpec::Url {
        url: format!("http://{}/vmlinux", server.addr),
        sha256: sha.clone(),
    };
    let b = bundle(Some(&spec), Some(cache.path())).unwrap();
    assert!(b.dir.starts_with(cache.path()));
    assert_eq!(
        b.manifest.kernel_sha256, sha,
        "the bundle's kernel is the pinned file"
    );
    let again = bundle(Some(&spec), Some(cache.path())).unwrap();
    assert_eq!(again.dir, b.dir);
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1,
        "no second download"
    );

    let wrong = KernelSpec::Url {
        url: format!("http://{}/vmlinux", server.addr),
        sha256: "0".repeat(64),
    };
    let e = bundle(Some(&wrong), Some(cache.path())).unwrap_err();
    assert!(matches!(e, KernelError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains(&sha) && e.to_string().contains("update `sha256`"));

    let missing = KernelSpec::Url {
        url: format!("http://{}/nope", server.addr),
        sha256: "1".repeat(64),
    };
    // (A pinned kernel already prepared needs no network at all.)
    let e = bundle(Some(&missing), Some(cache.path())).unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    // Nothing half-written is left in the cache.
    let names: Vec<String> = std::fs::read_dir(cache.path().join("kernel"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}
