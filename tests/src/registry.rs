//! A real CNCF distribution registry (`docker-registry` from Debian) for tests: started
//! on 127.0.0.1 with a free port, a temp storage dir and a config file written here (no
//! Debian service defaults), waited for until `/v2/` answers (bounded), and killed by
//! [`Registry`]'s `Drop` — also when the test panics, in which case its log is printed.

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Fails the test (never skips it) when a tool is missing, naming the package.
pub fn require_tool(bin: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(bin))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("`{bin}` is not installed; these tests need it: apt-get install -y {package}")
    })
}

/// A free TCP port on 127.0.0.1 (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A running registry; killed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: TempDir,
}

impl Registry {
    /// Anonymous read/write registry.
    pub fn start() -> Registry {
        Registry::start_inner(None)
    }

    /// Registry requiring HTTP basic auth for `user`/`password` (htpasswd, bcrypt).
    pub fn start_with_basic_auth(user: &str, password: &str) -> Registry {
        Registry::start_inner(Some((user, password)))
    }

    fn start_inner(auth: Option<(&str, &str)>) -> Registry {
        let bin = require_tool("docker-registry", "docker-registry");
        let htpasswd = auth.map(|(user, password)| {
            let tool = require_tool("htpasswd", "apache2-utils");
            let out = Command::new(tool)
                .args(["-Bbn", user, password])
                .output()
                .expect("run htpasswd");
            assert!(
                out.status.success(),
                "htpasswd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        });
        // The port may be taken between free_port() and the registry's bind: try again.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let storage = dir.path().join("storage");
            fs::create_dir_all(&storage).unwrap();
            let auth_yaml = match &htpasswd {
                Some(content) => {
                    let file = dir.path().join("htpasswd");
                    fs::write(&file, content).unwrap();
                    format!(
                        "auth:\n  htpasswd:\n    realm: cast-test\n    path: {}\n",
                        file.display()
                    )
                }
                None => String::new(),
            };
            let addr = format!("127.0.0.1:{}", free_port());
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {addr}\n{auth_yaml}",
                    storage.display()
                ),
            )
            .unwrap();
            let log = fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let mut reg = Registry { child, addr, dir };
            if reg.wait_ready(Duration::from_secs(15)) {
                return reg;
            }
            // `reg` is dropped here: killed and reaped.
            eprintln!("registry did not come up, retrying:\n{}", reg.log());
        }
        panic!("docker-registry did not start on 127.0.0.1 after 5 tries");
    }

    /// Polls `/v2/` until any HTTP answer (200 or 401), the child exits, or `limit`.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if client
                .get(format!("http://{}/v2/", self.addr))
                .send()
                .is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Where the registry keeps blob `hex` (to corrupt it).
    pub fn blob_data_path(&self, hex: &str) -> PathBuf {
        self.storage().join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- docker-registry log ({}) ---\n{}",
                self.addr,
                self.log()
            );
        }
    }
}
