//! A real CNCF distribution registry (`docker-registry` from Debian) for tests: started
//! on `127.0.0.1:0` (the registry binds a free port itself and logs it, so no other
//! process can take the port in between), with a temp storage dir and a config file
//! written here (no Debian service defaults), waited for until it logs its address
//! (bounded), and killed by [`Registry`]'s `Drop` — also when the test panics, in which
//! case its log is printed.

use std::fs;
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

/// A `127.0.0.1:PORT` that refuses connections for as long as the returned socket
/// lives: bound, so no one else gets the port, and never listening.
pub fn refusing_addr() -> (std::os::fd::OwnedFd, String) {
    use nix::sys::socket::SockaddrIn;
    use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("a TCP socket");
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind 127.0.0.1:0");
    let addr: SockaddrIn = getsockname(fd.as_raw_fd()).expect("getsockname");
    (fd, addr.to_string())
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
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:0\n{auth_yaml}",
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
        let mut reg = Registry {
            child,
            addr: String::new(),
            dir,
        };
        reg.addr = reg
            .wait_listening(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("docker-registry did not start:\n{}", reg.log()));
        reg
    }

    /// The address the registry logs once it listens (`listening on 127.0.0.1:PORT`);
    /// `None` if it exits or `limit` passes first.
    fn wait_listening(&mut self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            // msg="listening on 127.0.0.1:PORT" (only a complete line has the quote).
            let log = self.log();
            let found = log.split("listening on ").nth(1);
            if let Some((addr, _)) = found.and_then(|rest| rest.split_once('"')) {
                return Some(addr.to_owned());
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
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
