//! Finding and opening the virtio-serial ports, and the control port's two halves.
//!
//! There is no udev in the guest, so ports are found by name in
//! `/sys/class/virtio-ports/*/name`; the directory name is the `/dev` node. The
//! numbering follows device order and is never assumed.

use crate::control::Controls;
use cast_proto::{port, read_frame, write_frame, FrameError, GuestMsg, HostMsg};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the port names may take to appear after virtio_console loads.
const PORT_WAIT: Duration = Duration::from_secs(10);

/// The open channel to the host.
#[derive(Debug)]
pub struct Channel {
    writer: Arc<Mutex<File>>,
    reader: Option<File>,
    /// The stdin port (host → guest), until the stdin pump takes it.
    pub stdin: Option<File>,
    /// The stdout port (guest → host), until the stdout pump takes it.
    pub stdout: Option<File>,
    /// The stderr port (guest → host), until the stderr pump takes it.
    pub stderr: Option<File>,
    controls: Option<Arc<Controls>>,
}

impl Channel {
    /// Waits for the four ports and opens them.
    pub fn open() -> io::Result<Self> {
        let mut nodes = find_ports()?;
        let mut take = |name: &str| -> io::Result<File> {
            let node = nodes.remove(name).expect("find_ports returns every port");
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(Path::new("/dev").join(&node))
                .map_err(|e| io::Error::other(format!("opening port {name} (/dev/{node}): {e}")))
        };
        let ctl = take(port::CONTROL)?;
        Ok(Channel {
            writer: Arc::new(Mutex::new(ctl.try_clone()?)),
            reader: Some(ctl),
            stdin: Some(take(port::STDIN)?),
            stdout: Some(take(port::STDOUT)?),
            stderr: Some(take(port::STDERR)?),
            controls: None,
        })
    }

    /// Sends one control message.
    pub fn send(&self, msg: &GuestMsg) -> Result<(), FrameError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *w, msg)
    }

    /// Receives one control message (only before [`Channel::start_controls`]).
    pub fn recv(&mut self) -> Result<Option<HostMsg>, FrameError> {
        let reader = self.reader.as_mut().expect("recv after start_controls");
        read_frame(reader)
    }

    /// Hands the reading half to the control thread, which acts on host messages
    /// (signals, resize, stdin EOF, Ack) from now on.
    pub fn start_controls(&mut self) -> Arc<Controls> {
        let reader = self.reader.take().expect("controls started twice");
        let controls = Controls::spawn(reader);
        self.controls = Some(controls.clone());
        controls
    }

    /// Waits until the host acknowledges the exit report (or `timeout` passes).
    pub fn wait_ack(&mut self, timeout: Duration) {
        let controls = match &self.controls {
            Some(c) => c.clone(),
            None => self.start_controls(),
        };
        controls.wait_ack(timeout);
    }
}

/// Polls sysfs until every port name has appeared; returns name → /dev node.
fn find_ports() -> io::Result<HashMap<String, String>> {
    let deadline = Instant::now() + PORT_WAIT;
    loop {
        let mut found = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/sys/class/virtio-ports") {
            for entry in dir.flatten() {
                if let Ok(name) = std::fs::read_to_string(entry.path().join("name")) {
                    let node = entry.file_name().to_string_lossy().into_owned();
                    found.insert(name.trim().to_owned(), node);
                }
            }
        }
        if port::ALL.iter().all(|p| found.contains_key(*p)) {
            return Ok(found);
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = port::ALL
                .iter()
                .filter(|p| !found.contains_key(**p))
                .collect();
            return Err(io::Error::other(format!(
                "virtio-serial ports {missing:?} did not appear within {PORT_WAIT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
