//! The channel between the runner on the host and the guest init (PID 1 in the VM).
//!
//! The channel is four virtio-serial ports. Three carry raw bytes, so stdio is
//! binary-safe and each stream has its own backpressure:
//!
//! | port            | direction     | carries                                    |
//! |-----------------|---------------|--------------------------------------------|
//! | [`port::STDIN`]  | host → guest | the process's stdin (or the pty input)     |
//! | [`port::STDOUT`] | guest → host | the process's stdout (or the pty output)   |
//! | [`port::STDERR`] | guest → host | the process's stderr (unused in TTY mode)  |
//! | [`port::CONTROL`]| both         | framed, versioned [`HostMsg`]/[`GuestMsg`] |
//!
//! Stream ends are not signalled in-band: a virtio-serial port has no EOF. Instead the
//! control port says how many bytes a stream carried ([`HostMsg::StdinEof`],
//! [`GuestMsg::Exit`]), and the reader stops once it has seen that many. Control
//! frames are `u32` little-endian length + JSON; a frame longer than [`MAX_FRAME`] is
//! refused, so neither side trusts the other's sizes.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Bumped whenever a message changes shape. Both sides refuse a peer with another one.
/// Version 2 added build mode ([`StartSpec::build`], [`GuestMsg::Exit`]'s `layer_bytes`).
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest control frame either side accepts (bytes of JSON).
pub const MAX_FRAME: usize = 1 << 20;

/// Names of the virtio-serial ports (`/sys/class/virtio-ports/*/name` in the guest).
pub mod port {
    /// Framed control messages, both directions.
    pub const CONTROL: &str = "cast.ctl";
    /// Raw bytes, host → guest.
    pub const STDIN: &str = "cast.stdin";
    /// Raw bytes, guest → host.
    pub const STDOUT: &str = "cast.stdout";
    /// Raw bytes, guest → host.
    pub const STDERR: &str = "cast.stderr";
    /// Every port, in the order the runner wires them.
    pub const ALL: [&str; 4] = [CONTROL, STDIN, STDOUT, STDERR];
}

/// What the guest should run: everything about one run travels here, so the initrd
/// stays generic and runtime overrides need no rebuild.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartSpec {
    /// The command and its arguments (entrypoint + cmd, already combined). Never empty.
    pub argv: Vec<String>,
    /// `KEY=VALUE` pairs for the process. The guest adds a default `PATH` if absent.
    pub env: Vec<String>,
    /// Working directory; created if missing. `None` means `/`.
    pub workdir: Option<String>,
    /// `name`, `uid`, `name:group` or `uid:gid`, resolved with the image's
    /// `/etc/passwd` and `/etc/group`. `None` means root.
    pub user: Option<String>,
    /// Give the process a pseudo-terminal instead of pipes.
    pub tty: bool,
    /// Initial terminal size (TTY mode).
    pub winsize: Option<WinSize>,
    /// Guest hostname.
    pub hostname: String,
    /// How to configure `eth0`; `None` leaves the guest with only `lo`.
    #[serde(default)]
    pub network: Option<NetworkSpec>,
    /// Host mounts, attached in this order once the root is in place.
    #[serde(default)]
    pub mounts: Vec<GuestMount>,
    /// Build mode (a Containerfile `RUN`): the overlay's upper layer is a scratch
    /// disk, and after a successful run the guest writes the changes as an OCI layer
    /// diff. `None` for an ordinary run.
    #[serde(default)]
    pub build: Option<BuildSpec>,
}

/// How a build-mode run sets up its disks and mounts. Every disk is found in the
/// guest by its virtio serial (`/sys/block/*/serial`), never by its `/dev/vdX` order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    /// Serial of the ext4 scratch disk that holds the overlay's upper and work dirs
    /// (writes are bounded by the disk, not by guest memory).
    pub scratch_serial: String,
    /// Serial of the raw disk the guest writes the layer diff (a tar) onto, from
    /// offset 0; its length is reported in [`GuestMsg::Exit`]'s `layer_bytes`.
    pub diff_serial: String,
    /// Mounts for the process only (`RUN --mount`), in order; they are not part of
    /// the layer.
    pub mounts: Vec<BuildMount>,
}

/// One `RUN --mount` as the guest sets it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildMount {
    /// Absolute path in the image.
    pub target: String,
    /// What is mounted there.
    pub kind: BuildMountKind,
}

/// What a [`BuildMount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuildMountKind {
    /// An empty tmpfs.
    Tmpfs {
        /// Size limit in bytes (`None`: the kernel's default, half of memory).
        size: Option<u64>,
    },
    /// A disk (by serial): EROFS read-only (a bind of context or stage files),
    /// or ext4 read-write (a cache that outlives the build).
    Disk {
        /// The disk's virtio serial.
        serial: String,
        /// Writes go to a throwaway tmpfs overlay (a bind mount with `rw`).
        overlay: bool,
        /// Mount read-only.
        readonly: bool,
    },
    /// A file with these bytes (a secret), mode 0400 unless `mode` says otherwise,
    /// on a tmpfs: never written to any disk.
    File {
        /// The content.
        content: Vec<u8>,
        /// Mode bits.
        mode: u32,
        /// Owner uid.
        uid: u32,
        /// Owner gid.
        gid: u32,
    },
}

/// The guest's static network configuration (no DHCP): the values of the host-side
/// NAT the runner started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The guest's address on `eth0`.
    pub address: std::net::Ipv4Addr,
    /// The prefix length of its subnet.
    pub prefix_len: u8,
    /// The default gateway.
    pub gateway: std::net::Ipv4Addr,
    /// The DNS server for `/etc/resolv.conf`.
    pub dns: std::net::Ipv4Addr,
    /// The address at which the host's own loopback services answer
    /// (`host.cast.internal` in `/etc/hosts`).
    pub host_loopback: std::net::Ipv4Addr,
    /// `eth0`'s MTU.
    pub mtu: u32,
}

/// The name under which the guest reaches the host's loopback services.
pub const HOST_ALIAS: &str = "host.cast.internal";

/// A host mount as the guest attaches it: a 9p share (virtio transport) found by its
/// tag, holding either the mounted directory or, for a single file, a directory
/// with only that file in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestMount {
    /// The 9p mount tag of the share.
    pub tag: String,
    /// Absolute path in the guest's root.
    pub target: String,
    /// Mount it read-only (the host's file server refuses writes too).
    pub read_only: bool,
    /// For a single-file mount: the file's name inside the share, bound onto
    /// `target`; `None` mounts the share itself on `target`.
    pub file: Option<String>,
}

/// 9p over virtio, Linux's protocol dialect, 512 KiB messages (QEMU's 9p server
/// takes that size; larger messages mean fewer round trips), and `cache=loose`: the
/// guest caches data and metadata, which under emulation is 7–10× faster than
/// `cache=mmap` for many small files (1,000 files copied out: 36 s against 273 s on
/// a loaded 2-core machine) and lets reads use read-ahead. The price: a change the
/// host makes to a file during the run may not be seen by the guest. Dirty data is
/// written back before the exit status is reported (cast-init syncs).
pub const MOUNT_OPTIONS: &str = "trans=virtio,version=9p2000.L,msize=524288,cache=loose";

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// Host → guest control messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostMsg {
    /// Answer to [`GuestMsg::Hello`]: run this.
    Start(Box<StartSpec>),
    /// The host's stdin ended after this many bytes on the stdin port.
    StdinEof {
        /// Total bytes written to the stdin port.
        bytes: u64,
    },
    /// Deliver this signal (Linux number) to the process.
    Signal {
        /// Signal number.
        signal: i32,
    },
    /// The host terminal changed size.
    Resize(WinSize),
    /// The host's stdout is gone (broken pipe): close the process's stdout so its next
    /// write fails as it would in a shell pipeline.
    CloseStdout,
    /// The host has received everything; the guest may power off.
    Ack,
}

/// Guest → host control messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuestMsg {
    /// The guest init is up and the channel is open.
    Hello {
        /// The guest's [`PROTOCOL_VERSION`].
        version: u32,
    },
    /// The process ended (or could not start); the stream totals let the host know
    /// when it has every byte.
    Exit {
        /// How it ended.
        status: ExitStatus,
        /// Bytes sent on the stdout port.
        stdout_bytes: u64,
        /// Bytes sent on the stderr port.
        stderr_bytes: u64,
        /// Why the command could not run (126/127), for the host to print.
        message: Option<String>,
        /// Build mode, the command succeeded: the layer diff's length in bytes on
        /// the diff disk.
        #[serde(default)]
        layer_bytes: Option<u64>,
    },
    /// The guest could not set the run up (a runtime failure: exit 125 on the host).
    Error {
        /// What went wrong, for the user.
        message: String,
    },
    /// A diagnostic line (only sent when debugging is on).
    Log {
        /// The line.
        message: String,
    },
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It exited with this code (or could not start: 126, 127).
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// The shell convention: the code itself, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// A control frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The port failed.
    #[error("control channel I/O failed")]
    Io(#[from] io::Error),
    /// The peer announced a frame larger than [`MAX_FRAME`].
    #[error("control frame of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// The frame is not a message of this protocol.
    #[error("malformed control frame")]
    Malformed(#[from] serde_json::Error),
    /// The stream ended inside a frame.
    #[error("control channel closed in the middle of a frame")]
    Truncated,
}

/// Writes one frame and flushes it.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match read_full(r, &mut len)? {
        0 => return Ok(None),
        4 => {}
        _ => return Err(FrameError::Truncated),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    if read_full(r, &mut body)? != len {
        return Err(FrameError::Truncated);
    }
    Ok(Some(serde_json::from_slice(&body)?))
}

/// Fills `buf` unless the stream ends first; returns how many bytes were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        let start = HostMsg::Start(Box::new(StartSpec {
            argv: vec!["echo".into(), "héllo\0x".into()],
            tty: true,
            winsize: Some(WinSize { rows: 24, cols: 80 }),
            ..Default::default()
        }));
        write_frame(&mut buf, &start).unwrap();
        write_frame(&mut buf, &HostMsg::Signal { signal: 2 }).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame::<_, HostMsg>(&mut r).unwrap(), Some(start));
        assert_eq!(
            read_frame::<_, HostMsg>(&mut r).unwrap(),
            Some(HostMsg::Signal { signal: 2 })
        );
        assert!(read_frame::<_, HostMsg>(&mut r).unwrap().is_none());
    }

    #[test]
    fn oversized_truncated_and_garbage_frames_are_refused() {
        let huge = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert!(matches!(
            read_frame::<_, GuestMsg>(&mut &huge[..]),
            Err(FrameError::TooLarge(_))
        ));
        let truncated = [10u8, 0, 0, 0, b'{'];
        assert!(matches!(
            read_frame::<_, GuestMsg>(&mut &truncated[..]),
            Err(FrameError::Truncated)
        ));
        let garbage = [2u8, 0, 0, 0, b'{', b'}'];
        assert!(matches!(
            read_frame::<_, GuestMsg>(&mut &garbage[..]),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn signal_deaths_follow_the_shell_convention() {
        assert_eq!(ExitStatus::Code(42).code(), 42);
        assert_eq!(ExitStatus::Signal(9).code(), 137);
    }
}
