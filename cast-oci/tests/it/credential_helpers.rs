//! Docker credential helpers (`credsStore`, `credHelpers`) run for real: each test
//! writes small `docker-credential-*` shell scripts into a temp dir and hands that dir
//! to the code as `PATH` through `AuthSource::from_lookup` (the process environment is
//! left alone, tests run in parallel). Pulls from the htpasswd registry with
//! credentials a helper serves, an identity token traded at a Bearer token endpoint,
//! the precedence (`credHelpers` over `credsStore`, a helper's answer over `auths`),
//! "credentials not found" as anonymous, and every failure — missing, failing, hanging,
//! garbage — as one clear error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use cast_oci::{AuthSource, Error};

use crate::support::proxy::{Proxy, ProxyState};
use crate::support::push::*;
use crate::support::registry::Registry;
use crate::support::{options, resolver};

/// A docker config dir and a helper bin dir, both temporary.
struct Setup {
    docker: tempfile::TempDir,
    bin: tempfile::TempDir,
}

impl Setup {
    fn new(config: serde_json::Value) -> Setup {
        let docker = tempfile::tempdir().unwrap();
        std::fs::write(docker.path().join("config.json"), config.to_string()).unwrap();
        Setup {
            docker,
            bin: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `docker-credential-<name>`: a `/bin/sh` script with `body`. `$url` holds
    /// the server URL read from stdin; every call appends "<args> <url>" to
    /// `<bin>/<name>.calls`.
    fn helper(&self, name: &str, body: &str) -> &Setup {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.bin.path().join(format!("docker-credential-{name}"));
        let calls = self.calls_file(name);
        let script = format!(
            "#!/bin/sh\nread -r url\necho \"$* $url\" >> '{}'\n{body}\n",
            calls.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Resolves `reference` with this setup's credentials, into a throwaway cache.
    fn pull(&self, reference: &str) -> cast_oci::Result<cast_oci::ResolvedImage> {
        let mut opts = options();
        opts.client.auth = self.auth();
        let cache = tempfile::tempdir().unwrap();
        resolver(cache.path(), opts).resolve_str(reference)
    }

    fn calls_file(&self, name: &str) -> PathBuf {
        self.bin.path().join(format!("{name}.calls"))
    }

    /// The calls `docker-credential-<name>` got, one "<args> <url>" per line.
    fn calls(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.calls_file(name))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn config_path(&self) -> PathBuf {
        self.docker.path().join("config.json")
    }

    /// Credentials from this docker config, helpers from the bin dir (then the system
    /// dirs, for `sleep` and friends), nothing from the real environment.
    fn auth(&self) -> AuthSource {
        let docker = self.docker.path().to_string_lossy().into_owned();
        let path = format!("{}:/usr/bin:/bin", self.bin.path().display());
        AuthSource::from_lookup(move |k| match k {
            "DOCKER_CONFIG" => Some(docker.clone()),
            "HOME" => Some("/nonexistent".into()),
            "PATH" => Some(path.clone()),
            _ => None,
        })
    }
}

/// A helper that prints `{"ServerURL":$url,"Username":user,"Secret":secret}`.
fn serves(user: &str, secret: &str) -> String {
    format!("printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$url\"")
}

const NOT_FOUND: &str = "echo 'credentials not found in native keychain'; exit 1";

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

fn private_registry() -> (Registry, TestImage, String) {
    let reg = Registry::start_with_basic_auth("alice", "wonderland");
    let img = TestImage::oci(
        "amd64",
        vec![TestLayer::new(
            &[("secret", b"from a helper\n")],
            LAYER_GZIP,
        )],
    );
    Pusher::new(&reg.addr, Some(("alice", "wonderland"))).image("private/app", Some("v1"), &img);
    let r = format!("{}/private/app:v1", reg.addr);
    (reg, img, r)
}

#[test]
fn creds_store_serves_a_pull_from_the_htpasswd_registry() {
    let (reg, img, r) = private_registry();
    // Docker Desktop style: an empty `auths` entry, the secret lives in the store.
    let s = Setup::new(serde_json::json!({
        "auths": { reg.addr.clone(): {} },
        "credsStore": "testhelper",
    }));
    s.helper(
        "testhelper",
        &format!(
            "[ \"$1\" = get ] || exit 3\n[ \"$url\" = '{}' ] || {{ {NOT_FOUND}; }}\n{}",
            reg.addr,
            serves("alice", "wonderland")
        ),
    );
    let mut opts = options();
    opts.client.auth = s.auth();
    let cache = tempfile::tempdir().unwrap();
    let image = resolver(cache.path(), opts).resolve_str(&r).unwrap();
    assert_eq!(
        std::fs::read(&image.layers[0].path).unwrap(),
        img.layers[0].blob
    );
    // Asked once, with `get` and the registry's host:port as the server URL.
    assert_eq!(s.calls("testhelper"), vec![format!("get {}", reg.addr)]);
}

#[test]
fn a_wrong_secret_from_a_helper_is_rejected_by_the_registry() {
    let (reg, _img, r) = private_registry();
    let s = Setup::new(serde_json::json!({ "credHelpers": { reg.addr.clone(): "testhelper" } }));
    s.helper("testhelper", &serves("alice", "not-the-password"));
    let err = s.pull(&r).unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { .. })
            && err.to_string().contains("rejected the credentials"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("not-the-password"));
}

#[test]
fn not_found_is_anonymous_and_auths_is_not_consulted() {
    let (reg, _img, r) = private_registry();
    // Valid inline credentials, but a store is configured: as in Docker, the store's
    // "not found" is the answer, so the pull is anonymous and the registry says 401.
    let s = Setup::new(serde_json::json!({
        "auths": { reg.addr.clone(): { "auth": basic("alice", "wonderland") } },
        "credsStore": "testhelper",
    }));
    s.helper("testhelper", NOT_FOUND);
    let err = s.pull(&r).unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { .. }) && err.to_string().contains("needs credentials"),
        "{err}"
    );
    assert_eq!(s.calls("testhelper").len(), 1);

    // An empty `credHelpers` entry means "the file" for that registry, store or not.
    let s = Setup::new(serde_json::json!({
        "auths": { reg.addr.clone(): { "auth": basic("alice", "wonderland") } },
        "credsStore": "testhelper",
        "credHelpers": { reg.addr.clone(): "" },
    }));
    s.helper("testhelper", NOT_FOUND);
    s.pull(&r).unwrap();
    assert!(s.calls("testhelper").is_empty());
}

#[test]
fn cred_helpers_beat_creds_store_and_env_beats_both() {
    let s = Setup::new(serde_json::json!({
        "credsStore": "store",
        "credHelpers": { "reg.example:5000": "specific" },
        "auths": { "reg.example:5000": { "auth": basic("inline", "x") } },
    }));
    s.helper("store", &serves("from-store", "s1"))
        .helper("specific", &serves("from-helper", "s2"));
    let auth = s.auth();
    let c = auth.credentials_for("reg.example:5000").unwrap().unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("from-helper", "s2")
    );
    let c = auth.credentials_for("other.example").unwrap().unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("from-store", "s1")
    );
    // Docker Hub: the server URL Docker uses for it.
    auth.credentials_for("docker.io").unwrap().unwrap();
    assert_eq!(s.calls("specific"), vec!["get reg.example:5000"]);
    assert_eq!(
        s.calls("store"),
        vec!["get other.example", "get https://index.docker.io/v1/"]
    );
    // Never the secret in Debug output.
    assert!(!format!("{c:?}").contains("s1"), "{c:?}");

    // The environment pair comes first; no helper runs.
    let docker = s.docker.path().to_string_lossy().into_owned();
    let path = s.bin.path().to_string_lossy().into_owned();
    let env = AuthSource::from_lookup(move |k| match k {
        "CAST_REGISTRY_USER" => Some("env-user".into()),
        "CAST_REGISTRY_PASSWORD" => Some("env-pw".into()),
        "DOCKER_CONFIG" => Some(docker.clone()),
        "PATH" => Some(path.clone()),
        _ => None,
    });
    let c = env.credentials_for("reg.example:5000").unwrap().unwrap();
    assert_eq!(c.username, "env-user");
    assert_eq!(s.calls("specific").len(), 1);
}

#[test]
fn missing_helper_is_one_clear_error() {
    let s = Setup::new(serde_json::json!({ "credsStore": "desktop" }));
    let err = s.auth().credentials_for("docker.io").unwrap_err();
    assert!(matches!(err, Error::CredentialHelper { .. }), "{err:?}");
    let msg = err.to_string();
    let config = s.config_path().display().to_string();
    for want in [
        "docker-credential-desktop is not on PATH",
        "registry docker.io",
        "install it, or remove `credsStore` from",
        &config,
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }

    // The same through a pull: the build stops with it before any request.
    let s = Setup::new(
        serde_json::json!({ "credHelpers": { "127.0.0.1:1": "ecr-login", "other.io": "x" } }),
    );
    let err = s.pull("127.0.0.1:1/some/app:v1").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("docker-credential-ecr-login is not on PATH")
            && msg.contains("remove the `credHelpers` entry \"127.0.0.1:1\" from"),
        "{msg}"
    );

    // Present but not executable is not "on PATH" either.
    let s = Setup::new(serde_json::json!({ "credsStore": "plain" }));
    std::fs::write(s.bin.path().join("docker-credential-plain"), "#!/bin/sh\n").unwrap();
    let msg = s.auth().credentials_for("x.io").unwrap_err().to_string();
    assert!(msg.contains("is not on PATH"), "{msg}");
}

#[test]
fn hanging_helper_is_killed_after_the_timeout() {
    let s = Setup::new(serde_json::json!({ "credsStore": "slow" }));
    let pid_file = s.bin.path().join("slow.pid");
    // `exec` so that the process the code spawned is the one that hangs.
    s.helper(
        "slow",
        &format!("echo $$ > '{}'\nexec sleep 60", pid_file.display()),
    );
    let auth = s.auth().with_helper_timeout(Duration::from_secs(1));
    let err = auth.credentials_for("reg.example").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("docker-credential-slow did not answer within 1 s and was killed")
            && msg.contains("registry reg.example")
            && msg.contains("echo reg.example | docker-credential-slow get"),
        "{msg}"
    );
    // Killed and reaped: the process is gone.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "helper {} still exists",
        pid.trim()
    );
}

#[test]
fn failing_helper_and_bad_json_are_clear_errors() {
    let s = Setup::new(serde_json::json!({ "credsStore": "broken" }));
    s.helper(
        "broken",
        "echo 'error getting credentials - keychain is locked'; exit 2",
    );
    let msg = s
        .auth()
        .credentials_for("reg.example")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("docker-credential-broken failed (exit status: 2: error getting credentials - keychain is locked)")
            && msg.contains("or remove `credsStore` from"),
        "{msg}"
    );

    // Garbage on stdout (with exit 0): an error, and the garbage (it might be the
    // secret) is not quoted.
    let s = Setup::new(serde_json::json!({ "credsStore": "garbage" }));
    s.helper("garbage", "echo 'hunter2 {'");
    let err = s.auth().credentials_for("reg.example").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::CredentialHelper { .. })
            && msg.contains("docker-credential-garbage printed something other than credentials JSON (syntax error at line 1 column 1)"),
        "{msg}"
    );
    assert!(!format!("{msg} {err:?}").contains("hunter2"), "{msg}");

    // Well-formed JSON of the wrong shape, holding the secret in the wrong type.
    let s = Setup::new(serde_json::json!({ "credsStore": "shape" }));
    s.helper(
        "shape",
        "echo '{\"Username\":\"u\",\"Secret\":[\"hunter2\"]}'",
    );
    let err = s.auth().credentials_for("reg.example").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("unexpected fields or types"), "{msg}");
    assert!(!format!("{msg} {err:?}").contains("hunter2"), "{msg}");
}

#[test]
fn identity_token_is_traded_at_the_token_endpoint() {
    let reg = Registry::start();
    let img = TestImage::oci("amd64", vec![TestLayer::new(&[("f", b"tok\n")], LAYER_TAR)]);
    Pusher::new(&reg.addr, None).image("test/idtoken", Some("v1"), &img);
    let proxy = Proxy::start(
        &reg.addr,
        ProxyState {
            bearer: true,
            refresh_token: Some("refresh-abc".into()),
            ..Default::default()
        },
    );
    let s = Setup::new(serde_json::json!({ "credsStore": "testhelper" }));
    s.helper("testhelper", &serves("<token>", "refresh-abc"));
    let mut opts = options();
    opts.client.auth = s.auth();
    let cache = tempfile::tempdir().unwrap();
    let image = resolver(cache.path(), opts)
        .resolve_str(&format!("{}/test/idtoken:v1", proxy.addr))
        .unwrap();
    assert_eq!(
        std::fs::read(&image.layers[0].path).unwrap(),
        img.layers[0].blob
    );
    let forms = proxy.state.token_forms.lock().unwrap().clone();
    assert_eq!(forms.len(), 1, "{forms:?}");
    let field = |k: &str| {
        forms[0]
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(field("refresh_token").as_deref(), Some("refresh-abc"));
    assert_eq!(field("service").as_deref(), Some("cast-test"));
    assert_eq!(
        field("scope").as_deref(),
        Some("repository:test/idtoken:pull")
    );
    assert!(field("client_id").is_some_and(|c| !c.is_empty()));
    assert!(proxy
        .requests()
        .iter()
        .filter(|l| l.contains("/blobs/"))
        .all(|l| l.ends_with("Bearer")));

    // A wrong refresh token: the token endpoint says 401, a clear auth error.
    let s = Setup::new(serde_json::json!({ "credsStore": "testhelper" }));
    s.helper("testhelper", &serves("<token>", "stale"));
    let err = s
        .pull(&format!("{}/test/idtoken:v1", proxy.addr))
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { .. })
            && err.to_string().contains("rejected the credentials"),
        "{err}"
    );
}

#[test]
fn identity_token_against_basic_auth_is_a_clear_error() {
    let (reg, _img, r) = private_registry();
    let s = Setup::new(serde_json::json!({ "credsStore": "testhelper" }));
    s.helper("testhelper", &serves("<token>", "refresh-abc"));
    let err = s.pull(&r).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Unauthorized { .. })
            && msg.contains(&reg.addr)
            && msg.contains("identity token"),
        "{msg}"
    );
    assert!(!msg.contains("refresh-abc"), "{msg}");
}
