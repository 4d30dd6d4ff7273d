//! The guest's network: the NAT to the host, `host.cast.internal`, published TCP and
//! UDP ports, the off switch, and ports that cannot be published. Servers on the host
//! listen on 127.0.0.1 only. Two boots: one with the network, one without.

#[path = "../../cast-build/tests/support/http.rs"]
#[allow(dead_code)] // the download tests use more of it
mod http;

use cast_tests::net::{free_port, network_rootfs, GUEST_PAGE};
use cast_tests::proc::{read_in_background, Guard, RUN_BOUND};
use cast_tests::{busybox_rootfs, RootFs, Run};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

const HOST_FILE: &str = "hello from the host\n";

#[test]
fn the_guest_reaches_the_host_by_name_and_serves_published_ports() {
    let server = http::Server::start();
    server.serve("/file.txt", HOST_FILE, &[]);
    let host_port = port_of(&server.url("/"));
    let (tcp, udp) = (free_port(), free_port());
    let script = format!(
        "ls /sys/class/net | tr '\\n' ' '; echo
         wget -qO- http://host.cast.internal:{host_port}/file.txt
         ping -c1 \"$(hostname)\" | head -n1
         httpd -p 80 -h /www
         udp-echo 7 &
         echo ready
         read line
         echo \"bye $line\""
    );
    let mut cmd = Run::new(network_rootfs())
        .flag(&["--hostname", "web", "-p", &format!("{tcp}:80")])
        .flag(&["-p", &format!("127.0.0.1:{udp}:7/udp")])
        .command(&["/bin/sh", "-c", &script])
        .into_command();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Guard::spawn(cmd);
    let mut stdin = child.0.stdin.take().unwrap();
    let stderr = read_in_background(child.0.stderr.take().unwrap());
    let lines = read_lines(child.0.stdout.take().unwrap());
    let mut seen = Vec::new();
    while !seen.iter().any(|l| l == "ready") {
        match lines.recv_timeout(RUN_BOUND) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("the guest never got ready; stdout so far: {seen:?}"),
        }
    }

    // The published TCP port reaches busybox httpd in the guest.
    let mut http = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    http.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.") && reply.ends_with(GUEST_PAGE),
        "{reply}"
    );
    // The published UDP port reaches the echo server (which may still be starting:
    // a datagram before it binds is lost, so ask again, a bounded number of times).
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", udp)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let echoed = (0..60).find_map(|_| {
        socket.send(b"ping").unwrap();
        socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    });
    assert_eq!(echoed.as_deref(), Some(&b"echo:ping"[..]));

    stdin.write_all(b"done\n").unwrap();
    drop(stdin);
    let code = child.wait_bounded(RUN_BOUND);
    seen.extend(lines.iter());
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
    assert_eq!(code, 0, "stdout: {seen:?}\nstderr: {stderr}");
    assert_eq!(
        seen,
        [
            "eth0 lo ",
            HOST_FILE.trim_end(),
            "PING web (10.0.2.15): 56 data bytes",
            "ready",
            "bye done"
        ],
        "stderr: {stderr}"
    );
    assert_eq!(server.requests(), 1);
}

#[test]
fn without_the_network_the_guest_has_only_lo() {
    let server = http::Server::start();
    server.serve("/file.txt", HOST_FILE, &[]);
    let script = format!(
        "ls /sys/class/net
         grep -c host.cast.internal /etc/hosts
         wget -qO- http://10.0.2.2:{}/file.txt; echo \"wget $?\"",
        port_of(&server.url("/"))
    );
    let out = Run::new(busybox_rootfs(RootFs::Erofs))
        .flag(&["--no-network"])
        .command(&["/bin/sh", "-c", &script])
        .output();
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "lo\n0\nwget 1\n");
    assert!(
        out.stderr.contains("Network is unreachable"),
        "{}",
        out.stderr
    );
    assert_eq!(server.requests(), 0);
}

#[test]
fn ports_that_cannot_be_published_fail_before_a_vm_starts() {
    let rootfs = busybox_rootfs(RootFs::Erofs);
    let run = |flags: &[&str], env: &[(&str, &str)]| {
        let mut run = Run::new(rootfs).flag(flags);
        for (k, v) in env {
            run = run.env(k, v);
        }
        run.command(&["true"]).output()
    };
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = run(&["-p", &format!("{port}:80")], &[]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot publish 127.0.0.1:{port}:80/tcp: host port {port}/tcp on 127.0.0.1 is not available"
        )),
        "{}",
        out.stderr
    );

    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let free = free_port();
    let out = run(
        &[],
        &[("CAST_PUBLISH", &format!("{free}:80,{port}:53/udp"))],
    );
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("host port {port}/udp")),
        "{}",
        out.stderr
    );

    let out = run(&["-p", "8080:80"], &[("CAST_NO_NETWORK", "1")]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("networking is off"), "{}", out.stderr);

    let out = run(&["-p", "80"], &[]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains("--publish \"80\"") && out.stderr.contains("give the host port too"),
        "{}",
        out.stderr
    );
}

/// The lines of `r` as they arrive.
fn read_lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The port of a `http://127.0.0.1:PORT/...` URL.
fn port_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let host_port = rest.split('/').next().unwrap();
    host_port.rsplit(':').next().unwrap().to_owned()
}
