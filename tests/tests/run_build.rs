//! RUN in build VMs, end to end with `cargo cast run DIR` (the image is built, then
//! booted in a VM that checks it): RUN creates files, a user (busybox-static has no
//! `adduser`: /etc/passwd and /etc/group edited, chown by name) and symlinks, deletes
//! files of the base (gone in the booted image), fetches from the host's loopback
//! (the default network) while `--network=none` has none, and its own /etc/hosts,
//! hostname and resolv.conf stay out of the layer; exec form, a COPY between RUNs; the unchanged second build boots no build VM (the status line says
//! so); changing the COPY source re-runs only the RUN after it. A failing RUN names
//! its file:line, exit code and last output, and caches nothing; a shell-form RUN
//! in an image without a shell is refused before any VM boots. A two-stage build
//! runs a stage's RUN and copies only its result; an unused stage with a failing
//! RUN is not built.

use std::path::Path;

use cast_tests::casting::cargo_cast_cmd;
use cast_tests::http::Server;
use cast_tests::images::push_busybox;
use cast_tests::proc::output_of;
use cast_tests::registry::Registry;
use cast_tests::Output;

/// `cargo cast run DIR` with the caches in `cache`.
fn cast_run(cache: &Path, dir: &Path) -> Output {
    cast_run_with(cache, dir, &[])
}

/// [`cast_run`] with more environment variables.
fn cast_run_with(cache: &Path, dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = cargo_cast_cmd(cache, &["run", dir.to_str().unwrap()]);
    cmd.env("CAST_CPUS", "1").env("CAST_BUILD_VM_CPUS", "1");
    cmd.envs(env.iter().copied());
    let out = output_of(cmd, Vec::new());
    eprintln!("cargo cast run {}:\n{}", dir.display(), out.stderr);
    out
}

/// A registry with the busybox image (its reference) and a work directory with an
/// empty `app/` for the Containerfile.
fn setup() -> (Registry, String, tempfile::TempDir) {
    let registry = Registry::start();
    let base = push_busybox(&registry);
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("app")).unwrap();
    (registry, base, work)
}

fn step_entries(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("build"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("step-"))
                .count()
        })
        .unwrap_or(0)
}

/// The paths in the RUN layers of the step cache.
fn layer_paths(cache: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(cache.join("build")).unwrap().flatten() {
        let layer = entry.path().join("layer.tar");
        if !layer.is_file() {
            continue;
        }
        let mut archive = tar::Archive::new(std::fs::File::open(layer).unwrap());
        for e in archive.entries().unwrap() {
            paths.push(e.unwrap().path().unwrap().display().to_string());
        }
    }
    paths
}

#[test]
fn run_steps_change_the_image_and_are_cached_per_step() {
    let (_registry, base, work) = setup();
    let (cache, dir) = (work.path().join("cache"), work.path().join("app"));
    let server = Server::start(|req| req.respond(200, &[], b"from the host\n"));
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    std::fs::write(dir.join("input.txt"), "first\n").unwrap();
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "FROM {base}\n\
             RUN echo app:x:1234:1234::/home/app:/bin/sh >> /etc/passwd \\\n \
             && echo app:x:1234: >> /etc/group && mkdir -p /home/app && chown app:app /home/app \\\n \
             && mkdir -p /data && echo made > /data/file \\\n \
             && ln -s /data/file /data/link && rm /bin/vi && rm -r /root \\\n \
             && wget -q -O /data/fetched http://host.cast.internal:{port}/greeting \\\n \
             && echo written-by-run > /etc/hosts && hostname > /data/hostname\n\
             RUN --network=none [\"/bin/sh\", \"-c\", \"echo exec-form > /exec.txt; \\\n \
             wget -q -O- http://host.cast.internal:{port}/greeting || echo no network >> /exec.txt\"]\n\
             COPY input.txt /input.txt\n\
             RUN tr a-z A-Z < /input.txt > /upper.txt\n\
             CMD id app; stat -c %U /home/app; cat /data/link /exec.txt /upper.txt; \\\n \
             ls /bin/vi /root 2>&1; cat /data/fetched /data/hostname; readlink /data/link\n"
        ),
    )
    .unwrap();

    let first = cast_run(&cache, &dir);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let text = first.stdout_text();
    assert!(
        text.starts_with("uid=1234(app) gid=1234(app) groups=1234(app)\napp\n"),
        "{text}"
    );
    assert!(
        text.contains("made\nexec-form\nno network\nFIRST\n"),
        "files from RUN and COPY, no network with --network=none: {text}"
    );
    assert!(
        text.contains("from the host\nbuildkitsandbox\n"),
        "a RUN reaches the host's loopback by default: {text}"
    );
    assert_eq!(server.requests(), ["GET /greeting "]);
    let paths = layer_paths(&cache);
    assert!(paths.iter().any(|p| p == "data/fetched"), "{paths:?}");
    let leaked: Vec<&String> = paths
        .iter()
        .filter(|p| ["etc/hosts", "etc/hostname", "etc/resolv.conf"].contains(&p.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "the RUN's own network files are not in its layer: {leaked:?}"
    );
    assert!(
        text.contains("ls: /bin/vi: No such file or directory")
            && text.contains("ls: /root: No such file or directory"),
        "files of the base deleted by RUN are gone: {text}"
    );
    assert!(text.ends_with("/data/file\n"), "{text}");
    assert!(
        first
            .stderr
            .contains("3 build VM boots, 0 RUN steps from the step cache"),
        "{}",
        first.stderr
    );

    let second = cast_run(&cache, &dir);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("image from the cache")
            && second.stderr.contains("0 build VM boots"),
        "an unchanged build boots no build VM: {}",
        second.stderr
    );
    assert_eq!(second.stdout_text(), text);

    std::fs::write(dir.join("input.txt"), "second\n").unwrap();
    let third = cast_run(&cache, &dir);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(
        third
            .stderr
            .contains("1 build VM boots, 2 RUN steps from the step cache"),
        "only the RUN after the changed COPY runs again: {}",
        third.stderr
    );
    assert!(
        third.stdout_text().contains("SECOND\n"),
        "{}",
        third.stdout_text()
    );

    // `--no-cache` (as `cargo cast build --no-cache` passes it): every step again.
    let fourth = cast_run_with(&cache, &dir, &[("CAST_BUILD_NO_CACHE", "1")]);
    assert_eq!(fourth.code, 0, "{}", fourth.stderr);
    assert!(
        fourth.stderr.contains("image built")
            && fourth
                .stderr
                .contains("3 build VM boots, 0 RUN steps from the step cache"),
        "--no-cache runs every step: {}",
        fourth.stderr
    );
    assert_eq!(fourth.stdout_text(), third.stdout_text());
}

#[test]
fn failing_and_impossible_runs_say_where_and_cache_nothing() {
    let (_registry, base, work) = setup();
    let (cache, dir) = (work.path().join("cache"), work.path().join("app"));
    let file = dir.join("Containerfile");
    std::fs::write(
        &file,
        format!("FROM {base}\nENV X=1\nRUN echo before the failure; echo to stderr >&2; exit 7\n"),
    )
    .unwrap();
    let out = cast_run(&cache, &dir);
    assert_eq!(out.code, 125, "{}", out.stderr);
    let want = format!(
        "{}:3:1: RUN echo before the failure; echo to stderr >&2; exit 7 failed with exit code 7",
        file.display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(
        out.stderr.contains("  | before the failure\n  | to stderr"),
        "{}",
        out.stderr
    );
    assert_eq!(step_entries(&cache), 0, "a failed RUN caches nothing");

    // No shell in the image: refused before a VM boots.
    std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
    std::fs::write(&file, "FROM scratch\nCOPY busybox /busybox\nRUN echo hi\n").unwrap();
    let out = cast_run(&cache, &dir);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(":3:1: RUN in shell form needs /bin/sh, and the image has none"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_two_stage_build_copies_only_the_result() {
    let (_registry, base, work) = setup();
    let (cache, dir) = (work.path().join("cache"), work.path().join("app"));
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "FROM {base} AS unused\nRUN exit 1\n\
             FROM {base} AS build\nWORKDIR /src\n\
             RUN printf '#!/bin/sh\\necho built by stage one\\n' > app && chmod 755 app \\\n \
             && echo junk > /src/junk\n\
             FROM scratch\nCOPY --from=build /bin/busybox /bin/sh\n\
             COPY --from=build /src/app /app\nENTRYPOINT [\"/app\"]\n"
        ),
    )
    .unwrap();
    let out = cast_run(&cache, &dir);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "built by stage one\n");
    assert!(
        out.stderr
            .contains("1 build VM boots, 0 RUN steps from the step cache"),
        "the unused stage is not built: {}",
        out.stderr
    );
}

#[test]
fn every_run_mount_type_and_a_heredoc_script_leave_nothing_in_the_layer() {
    let (_registry, base, work) = setup();
    let (cache, dir) = (work.path().join("cache"), work.path().join("app"));
    std::fs::create_dir(dir.join("ctx")).unwrap();
    std::fs::write(dir.join("ctx/input.txt"), "context input\n").unwrap();
    let secret = work.path().join("token");
    std::fs::write(&secret, "s3cr3t\n").unwrap();
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "FROM {base} AS tools\nRUN mkdir /out && echo from-stage > /out/tool.txt\n\
             FROM {base}\n\
             RUN --mount=type=bind,source=ctx,target=/ctx \\\n \
             --mount=type=bind,from=tools,source=/out,target=/stage \\\n \
             --mount=type=tmpfs,target=/scratch --mount=type=secret,id=token \\\n \
             --mount=type=cache,target=/var/cache/thing <<EOF\n\
             set -e\n\
             cat /ctx/input.txt /stage/tool.txt > /result.txt\n\
             echo scratch > /scratch/t; cat /scratch/t >> /result.txt\n\
             grep -q s3cr3t /run/secrets/token && echo secret seen >> /result.txt\n\
             echo cached > /var/cache/thing/f\n\
             touch /ctx/try 2>/dev/null || echo bind is read-only >> /result.txt\n\
             EOF\n\
             CMD cat /result.txt; ls /ctx /stage /scratch /var 2>&1; true\n"
        ),
    )
    .unwrap();
    let mut cmd = cargo_cast_cmd(&cache, &["run", dir.to_str().unwrap()]);
    cmd.env("CAST_CPUS", "1")
        .env("CAST_BUILD_VM_CPUS", "1")
        .env(
            "CAST_BUILD_SECRET",
            format!("id=token,src={}", secret.display()),
        );
    let out = output_of(cmd, Vec::new());
    eprintln!("{}", out.stderr);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout_text(),
        "context input\nfrom-stage\nscratch\nsecret seen\nbind is read-only\n\
         ls: /ctx: No such file or directory\nls: /stage: No such file or directory\n\
         ls: /scratch: No such file or directory\nls: /var: No such file or directory\n",
        "the heredoc ran with every mount, and no mount point is left in the image"
    );
    let paths = layer_paths(&cache);
    assert!(paths.iter().any(|p| p == "result.txt"), "{paths:?}");
    let mounted = ["ctx", "stage", "scratch", "var", "run"];
    assert!(
        !paths
            .iter()
            .any(|p| mounted.contains(&p.split('/').next().unwrap())),
        "no mount in a layer: {paths:?}"
    );
    for entry in std::fs::read_dir(cache.join("build")).unwrap().flatten() {
        let layer = std::fs::read(entry.path().join("layer.tar")).unwrap_or_default();
        assert!(
            !layer.windows(6).any(|w| w == b"s3cr3t"),
            "the secret is in no layer"
        );
    }
}
