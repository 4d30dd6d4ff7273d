//! The guest's network, host side: QEMU's user-mode NAT (libslirp) and published ports.
//!
//! - Rootless and needs no host set-up: `-netdev user` with a `virtio-net-device`.
//!   The NAT's addresses are fixed here ([`guest_spec`]) and sent to the guest, which
//!   configures `eth0` statically (no DHCP).
//! - The guest reaches the host's loopback services at the NAT's gateway address,
//!   named `host.cast.internal` in its `/etc/hosts`.
//! - Published ports are QEMU `hostfwd` rules. Before QEMU starts, the runner binds
//!   every host socket itself, the way QEMU will (TCP with `SO_REUSEADDR`, listening),
//!   and closes it again: a taken port is an error naming it, and no guest boots. QEMU
//!   treats a forwarding rule it cannot bind as fatal at start, so a running VM has
//!   every port bound; the runner reports that failure naming the rule too (a port
//!   taken in between).

use cast_core::publish::{PortMapping, Protocol};
use cast_proto::NetworkSpec;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

/// The NAT's subnet (QEMU's default): guest `.15`, gateway and host loopback `.2`,
/// DNS `.3`.
const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 0);
const PREFIX_LEN: u8 = 24;
const GUEST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// libslirp's MTU.
const MTU: u32 = 1500;

/// The guest's network as the VM engine attaches it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    /// Host ports forwarded into the guest.
    pub publish: Vec<PortMapping>,
}

/// The guest's static configuration for this NAT.
pub fn guest_spec() -> NetworkSpec {
    NetworkSpec {
        address: GUEST,
        prefix_len: PREFIX_LEN,
        gateway: GATEWAY,
        dns: DNS,
        host_loopback: GATEWAY,
        mtu: MTU,
    }
}

/// QEMU's arguments for the card and its NAT.
pub fn qemu_args(net: &Network) -> Vec<String> {
    let mut netdev = format!(
        "user,id=net0,net={SUBNET}/{PREFIX_LEN},host={GATEWAY},dns={DNS},dhcpstart={GUEST}"
    );
    for m in &net.publish {
        netdev.push_str(&format!(
            ",hostfwd={}:{}:{}-{GUEST}:{}",
            m.protocol.name(),
            m.host_ip,
            m.host_port,
            m.guest_port
        ));
    }
    vec![
        "-netdev".into(),
        netdev,
        "-device".into(),
        "virtio-net-device,netdev=net0".into(),
    ]
}

/// A published port cannot be bound on the host.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish {mapping}: host port {port}/{protocol} on {ip} is not available ({source})", port = mapping.host_port, protocol = mapping.protocol.name(), ip = mapping.host_ip)]
pub struct PortError {
    /// The mapping.
    pub mapping: PortMapping,
    /// Why the bind failed (typically "Address in use").
    pub source: io::Error,
}

/// Binds each host socket as QEMU will, then lets it go: the first that fails is
/// the error.
pub fn check_ports(publish: &[PortMapping]) -> Result<(), PortError> {
    for m in publish {
        let addr = SocketAddrV4::new(m.host_ip, m.host_port);
        let bound = match m.protocol {
            // std sets SO_REUSEADDR on listeners, as libslirp does: a port whose
            // last connections linger in TIME_WAIT is free for both.
            Protocol::Tcp => TcpListener::bind(addr).map(drop),
            // No SO_REUSEADDR: libslirp sets it on UDP sockets, which would let QEMU
            // share a port another program has bound with it, each getting part of
            // the datagrams. Refuse that here.
            Protocol::Udp => UdpSocket::bind(addr).map(drop),
        };
        bound.map_err(|source| PortError {
            mapping: *m,
            source,
        })?;
    }
    Ok(())
}

/// The forwarding rule QEMU's stderr says it could not set up, as the mapping it
/// came from.
pub fn failed_rule<'a>(diagnostics: &str, publish: &'a [PortMapping]) -> Option<&'a PortMapping> {
    let line = diagnostics
        .lines()
        .find(|l| l.contains("Could not set up host forwarding rule"))?;
    publish.iter().find(|m| {
        line.contains(&format!(
            "{}:{}:{}-",
            m.protocol.name(),
            m.host_ip,
            m.host_port
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(list: &str) -> Vec<PortMapping> {
        cast_core::publish::parse_all([list]).unwrap()
    }

    #[test]
    fn forwarding_rules_target_the_guest_address() {
        let args = qemu_args(&Network {
            publish: publish("8080:80,0.0.0.0:5353:53/udp"),
        });
        assert_eq!(
            args[1],
            "user,id=net0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,dhcpstart=10.0.2.15,\
             hostfwd=tcp:127.0.0.1:8080-10.0.2.15:80,hostfwd=udp:0.0.0.0:5353-10.0.2.15:53"
        );
        assert_eq!(args[3], "virtio-net-device,netdev=net0");
    }

    #[test]
    fn a_taken_port_is_named_and_a_free_one_passes() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (t, u) = (
            tcp.local_addr().unwrap().port(),
            udp.local_addr().unwrap().port(),
        );
        let e = check_ports(&publish(&format!("{t}:80"))).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "cannot publish 127.0.0.1:{t}:80/tcp: host port {t}/tcp on 127.0.0.1"
            )),
            "{e}"
        );
        assert!(check_ports(&publish(&format!("{u}:53/udp"))).is_err());
        // The other protocol on the same numbers is free.
        check_ports(&publish(&format!("{t}:80/udp,{u}:53/tcp"))).unwrap();
    }

    #[test]
    fn qemus_complaint_names_the_mapping() {
        let all = publish("8080:80,9090:90");
        let stderr = "qemu-system-x86_64: -netdev user,id=net0: Could not set up host \
                      forwarding rule 'tcp:127.0.0.1:9090-10.0.2.15:90'";
        assert_eq!(failed_rule(stderr, &all), Some(&all[1]));
        assert_eq!(failed_rule("something else", &all), None);
    }
}
