//! The guest's network: `lo` always, `eth0` statically when the host asked for it.
//!
//! No DHCP client: the runner knows the NAT's addresses and sends them in the
//! [`NetworkSpec`]; a handful of ioctls (address, netmask, MTU, up, default route)
//! configure the interface in a few milliseconds. `/etc/resolv.conf` points at the
//! NAT's DNS and `/etc/hosts` names the guest and the host ([`HOST_ALIAS`]); a run
//! writes them in its throwaway overlay, a build VM mounts them over the image's
//! (`crate::build::sandbox_files`), so they never reach a layer.
//!
//! The virtio-net driver may be a module (Debian's kernel): it is loaded with the
//! others unless the kernel command line says `cast_net=0` (networking off), so a run
//! without a network does not pay for it.

use cast_proto::{NetworkSpec, HOST_ALIAS};
use std::ffi::CStr;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// The network card's modules (dependencies included): skipped when networking is off.
pub const NET_MODULES: &[&str] = &["virtio_net", "net_failover", "failover"];

/// The interface the virtio-net card becomes (no udev renames it).
const ETH: &CStr = c"eth0";

/// How long the card may take to appear after its driver loaded.
const CARD_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the kernel command line turned networking off (`cast_net=0`, which the
/// kernel hands to init as an environment variable).
pub fn disabled_on_cmdline() -> bool {
    std::env::var("cast_net").is_ok_and(|v| v == "0")
}

/// The interface could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The card never appeared: the kernel has no virtio-net driver.
    #[error(
        "networking is on, but the guest kernel has no virtio-net driver (eth0 is missing): \
         fetch the kernel again with `cargo cast kernel fetch --force`, or turn networking off \
         (CAST_NO_NETWORK=1)"
    )]
    NoCard,
    /// An ioctl failed.
    #[error("configuring {what}: {source}")]
    Ioctl {
        /// Which step.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// Brings up `lo` (the kernel gives it 127.0.0.1 and ::1 by itself).
pub fn loopback_up() -> Result<(), NetError> {
    let sock = control_socket()?;
    set_flags(&sock, c"lo", "lo")
}

/// Configures `eth0` from `spec`: address, netmask, MTU, up, default route.
pub fn configure(spec: &NetworkSpec) -> Result<(), NetError> {
    wait_for_card()?;
    let sock = control_socket()?;
    let mut req = ifreq(ETH);
    req.ifr_ifru.ifru_addr = sockaddr(spec.address);
    ioctl(&sock, libc::SIOCSIFADDR, &mut req, "eth0's address")?;
    req.ifr_ifru.ifru_netmask = sockaddr(netmask(spec.prefix_len));
    ioctl(&sock, libc::SIOCSIFNETMASK, &mut req, "eth0's netmask")?;
    req.ifr_ifru.ifru_mtu = spec.mtu as libc::c_int;
    ioctl(&sock, libc::SIOCSIFMTU, &mut req, "eth0's MTU")?;
    set_flags(&sock, ETH, "eth0")?;
    let mut route = RtEntry {
        rt_dst: sockaddr(Ipv4Addr::UNSPECIFIED),
        rt_gateway: sockaddr(spec.gateway),
        rt_genmask: sockaddr(Ipv4Addr::UNSPECIFIED),
        rt_flags: libc::RTF_UP | libc::RTF_GATEWAY,
        ..RtEntry::default()
    };
    ioctl(&sock, libc::SIOCADDRT, &mut route, "the default route")
}

/// `/etc/hosts`: localhost, the guest's name (at its `eth0` address when it has one,
/// as Docker does) and, with a network, the host's loopback as [`HOST_ALIAS`].
pub fn hosts_file(hostname: &str, spec: Option<&NetworkSpec>) -> String {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match spec {
        Some(net) => {
            hosts.push_str(&format!("{}\t{hostname}\n", net.address));
            hosts.push_str(&format!("{}\t{HOST_ALIAS}\n", net.host_loopback));
        }
        None => hosts.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    hosts
}

/// `/etc/resolv.conf`: the NAT's DNS.
pub fn resolv_conf(spec: &NetworkSpec) -> String {
    format!("nameserver {}\n", spec.dns)
}

/// Writes `/etc/resolv.conf` (best effort, like the hosts file, which made `/etc`).
pub fn write_resolv_conf(spec: &NetworkSpec) {
    // The image's file may be a symlink (systemd-resolved): replace it.
    let _ = std::fs::remove_file("/etc/resolv.conf");
    let _ = std::fs::write("/etc/resolv.conf", resolv_conf(spec));
}

/// Waits until the driver has made `eth0`.
fn wait_for_card() -> Result<(), NetError> {
    let deadline = Instant::now() + CARD_TIMEOUT;
    while !Path::new("/sys/class/net/eth0").exists() {
        if Instant::now() >= deadline {
            return Err(NetError::NoCard);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

fn control_socket() -> Result<OwnedFd, NetError> {
    // SAFETY: socket() with constant arguments; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(NetError::Ioctl {
            what: "a control socket",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` is a fresh descriptor this function owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets IFF_UP | IFF_RUNNING on `name`.
fn set_flags(sock: &OwnedFd, name: &CStr, what: &'static str) -> Result<(), NetError> {
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    ioctl(sock, libc::SIOCSIFFLAGS, &mut req, what)
}

fn ioctl<T>(
    sock: &OwnedFd,
    request: libc::c_ulong,
    arg: &mut T,
    what: &'static str,
) -> Result<(), NetError> {
    // SAFETY: every request used here takes a pointer to exactly the struct passed
    // (ifreq for SIOCSIF*, rtentry for SIOCADDRT), which lives across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), request, arg as *mut T) } < 0 {
        return Err(NetError::Ioctl {
            what,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn ifreq(name: &CStr) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.to_bytes()) {
        *dst = *src as libc::c_char;
    }
    req
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size (16 bytes) on Linux, and
    // sockaddr is the generic view of it the kernel expects.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn netmask(prefix_len: u8) -> Ipv4Addr {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits)
}

/// `struct rtentry` of <net/route.h> (not in the libc crate for glibc targets).
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

impl Default for RtEntry {
    fn default() -> Self {
        // SAFETY: rtentry is plain old data (null pointers are its "unset"); all-zero
        // is a valid value.
        unsafe { std::mem::zeroed() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NetworkSpec {
        NetworkSpec {
            address: Ipv4Addr::new(10, 0, 2, 15),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 0, 2, 2),
            dns: Ipv4Addr::new(10, 0, 2, 3),
            host_loopback: Ipv4Addr::new(10, 0, 2, 2),
            mtu: 1500,
        }
    }

    #[test]
    fn netmasks_follow_the_prefix_length() {
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(netmask(32), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn hosts_name_the_guest_and_the_host() {
        let with = hosts_file("web", Some(&spec()));
        assert!(with.contains("10.0.2.15\tweb\n"), "{with}");
        assert!(with.contains("10.0.2.2\thost.cast.internal\n"), "{with}");
        let without = hosts_file("web", None);
        assert!(without.contains("127.0.1.1\tweb\n"), "{without}");
        assert!(!without.contains(HOST_ALIAS), "{without}");
    }
}
