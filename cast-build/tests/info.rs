//! `cargo cast info`: finding the file, and the table and JSON a user reads.

use std::fs;

use cast_build::{info, InfoError};

const FILE: &str = "\
# syntax=docker/dockerfile:1
ARG RUST=1.80
FROM rust:${RUST} AS builder
WORKDIR /src
COPY . .
RUN cargo build --release

FROM --platform=linux/arm64 debian:12 AS runtime
ARG PORT=8080
LABEL org.opencontainers.image.title=\"demo app\"
ENV APP_HOME=/srv/app
WORKDIR $APP_HOME
COPY --from=builder /src/target/release/app /usr/local/bin/app
EXPOSE $PORT 9000-9001/udp
USER app
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK CMD curl -f http://localhost/
ENTRYPOINT [\"/usr/local/bin/app\"]
CMD [\"--serve\"]
";

const TABLE: &str = "\
file         DIR/Containerfile
stages       #0  builder  FROM rust:1.80
             #1  runtime  FROM debian:12  linux/arm64  (target)
args         RUST=1.80  (global)
             PORT=80  (in runtime)
env          APP_HOME=/srv/app
ports        80/tcp, 9000/udp, 9001/udp
entrypoint   [\"/usr/local/bin/app\"]
cmd          [\"--serve\"]
user         app
workdir      /srv/app
labels       org.opencontainers.image.title=demo app
volumes      /data
stop signal  SIGINT
warnings     DIR/Containerfile:1:3: `# syntax=docker/dockerfile:1` ignored: cargo-cast has its own frontend
             DIR/Containerfile:18:1: HEALTHCHECK is ignored: microVMs have no health checks
             settings inherited from debian:12 are not shown (base image not fetched)
";

#[test]
fn table_for_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Containerfile"), FILE).unwrap();
    let i = info(dir.path(), &[("PORT".into(), "80".into())]).unwrap();
    let table = i
        .to_table()
        .replace(&dir.path().display().to_string(), "DIR");
    assert_eq!(table, TABLE);
}

#[test]
fn json_for_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.Containerfile");
    fs::write(
        &path,
        "FROM scratch\nCOPY app /app\nENV B=2 A=1\nCMD /app\n",
    )
    .unwrap();
    let i = info(&path, &[]).unwrap();
    let json: serde_json::Value = serde_json::from_str(&i.to_json()).unwrap();
    let want = serde_json::json!({
        "file": path,
        "stages": [{"name": null, "base": "scratch", "platform": null, "target": true}],
        "args": [],
        "env": {"A": "1", "B": "2", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        "exposed_ports": [],
        "entrypoint": null,
        "cmd": ["/bin/sh", "-c", "/app"],
        "user": null,
        "workdir": null,
        "labels": {},
        "volumes": [],
        "stop_signal": null,
        "warnings": [],
    });
    assert_eq!(json, want);
}

#[test]
fn empty_fields_show_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let i = info(dir.path(), &[]).unwrap();
    let table = i
        .to_table()
        .replace(&dir.path().display().to_string(), "DIR");
    assert_eq!(
        table,
        "\
file         DIR/Dockerfile
stages       #0  -  FROM scratch  (target)
args         -
env          PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ports        -
entrypoint   -
cmd          -
user         -
workdir      -
labels       -
volumes      -
stop signal  -
warnings     -
"
    );
}

#[test]
fn containerfile_is_preferred_over_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), "FROM a\n").unwrap();
    fs::write(dir.path().join("Containerfile"), "FROM b\n").unwrap();
    assert_eq!(info(dir.path(), &[]).unwrap().stages[0].base, "b");
}

#[test]
fn errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = info(dir.path(), &[]).unwrap_err();
    assert!(matches!(e, InfoError::NotFound { .. }));
    assert_eq!(
        e.to_string(),
        format!("no Containerfile or Dockerfile in {}", dir.path().display())
    );
    fs::write(dir.path().join("Containerfile"), "FROM a\nEXPOSE http\n").unwrap();
    let e = info(dir.path(), &[])
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "DIR");
    assert_eq!(
        e,
        "DIR/Containerfile:2:1: invalid port \"http\" in \"http\" (1 to 65535) (hint: write EXPOSE 80, 80/udp or 8000-8010/tcp)"
    );
    fs::write(dir.path().join("Containerfile"), "FRM a\n").unwrap();
    let e = info(dir.path(), &[])
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "DIR");
    assert_eq!(
        e,
        "DIR/Containerfile:1:1: unknown instruction 'FRM' (hint: did you mean FROM?)"
    );
}

#[test]
fn run_in_an_unused_stage_is_only_noted() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Containerfile"),
        "FROM a AS tools\nRUN make\nFROM scratch\n",
    )
    .unwrap();
    let i = info(dir.path(), &[]).unwrap();
    let w: Vec<String> = i
        .warnings
        .iter()
        .map(|w| w.replace(&dir.path().display().to_string(), "DIR"))
        .collect();
    assert_eq!(
        w,
        ["DIR/Containerfile:2:1: RUN is in a stage the target does not use; it is skipped"]
    );
}
