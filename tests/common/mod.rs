//! What the bed tests share: the bed check, the datasets' folder, throw-away copies of `dev`
//! and exit-code assertions. Each test binary uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

/// The streams `dev` ships with.
pub(crate) const STREAMS: [&str; 3] = ["client_tickets", "incident_events", "sensor_readings"];

/// LocalStack and the moto sidecar.
pub(crate) const AWS_EMULATORS: &[&str] = &["127.0.0.1:4566", "127.0.0.1:5000"];
/// The emulators and the Kafka broker.
pub(crate) const WHOLE_BED: &[&str] = &["127.0.0.1:4566", "127.0.0.1:5000", "127.0.0.1:9092"];

/// The bed's broker that takes only SASL/SCRAM over TLS (stunnel in front of Tansu).
pub(crate) const SASL_BROKER: &str = "127.0.0.1:9093";

/// The file `localstack/up.sh` wrote with `principal`'s (`admin`, `worker`) credentials on
/// [`SASL_BROKER`]: JSON `username`, `password`, `ca_certificate`.
#[allow(dead_code)]
pub(crate) fn sasl_credentials(principal: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("localstack/.run/broker-sasl/{principal}.json"))
}

/// Panics with how to start the bed unless every address answers.
pub(crate) fn bed_is_up(addresses: &[&str]) {
    for address in addresses {
        let socket = address.parse().unwrap();
        if std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(2)).is_err() {
            panic!("the test bed is not running ({address} does not answer): start it with localstack/up.sh");
        }
    }
}

/// The real datasets: `$INDUTECH_DATA_DIR`, else `../shared/data` next to the repository, else
/// `/work/shared/data`.
pub(crate) fn data_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("INDUTECH_DATA_DIR").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")),
        Some(PathBuf::from("/work/shared/data")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("itsm_incident_event_log").is_dir())
        .expect("the shared datasets are missing: set INDUTECH_DATA_DIR to the folder holding itsm_incident_event_log/")
}

/// A copy of `environments/dev.toml` named `<prefix><10 hex digits>`, reading the repository's
/// stream files, in a fresh folder under the temporary directory; with `own_topics` every
/// stream gets the topic `<name>-<stream>`; `edit` changes the text further.
/// Returns (folder, file, name).
pub(crate) fn write_env(prefix: &str, own_topics: bool, edit: impl Fn(String) -> String) -> (PathBuf, PathBuf, String) {
    write_env_from("dev", prefix, own_topics, edit)
}

/// [`write_env`] for a copy of `environments/<base>.toml`.
pub(crate) fn write_env_from(
    base: &str,
    prefix: &str,
    own_topics: bool,
    edit: impl Fn(String) -> String,
) -> (PathBuf, PathBuf, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let name = format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut text = std::fs::read_to_string(format!("{root}/environments/{base}.toml")).unwrap().replacen(
        &format!("name = \"{base}\""),
        &format!("name = \"{name}\"\nstreams_dir = \"{root}/environments/streams\""),
        1,
    );
    if own_topics {
        for stream in STREAMS {
            let header = format!("[streams.{stream}]\n");
            text = text.replacen(&header, &format!("{header}topic = \"{name}-{stream}\"\n"), 1);
        }
    }
    let dir = std::env::temp_dir().join(format!("indutech-test-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, edit(text)).unwrap();
    (dir, path, name)
}

/// Asserts that `indutech <args>` exited with `code` (showing both outputs if not); returns
/// stdout.
pub(crate) fn exited(args: &[&str], out: &Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "indutech {args:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The bed's tool cache (`INDUTECH_CACHE_DIR`, default `~/.cache/indutech`), as
/// `localstack/lib.sh` has it.
pub(crate) fn cache_dir() -> PathBuf {
    std::env::var_os("INDUTECH_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
            .join("indutech")
    })
}

/// The Python of the test bed's clients venv (confluent-kafka, pyarrow), installed by
/// `localstack/up.sh`; panics naming it when missing.
pub(crate) fn clients_python() -> PathBuf {
    let python = cache_dir().join("venv-clients/bin/python");
    assert!(python.exists(), "{} is missing: run localstack/up.sh (it installs the test clients)", python.display());
    python
}

/// Runs `tests/clients/<script>` with the clients' Python; returns its stdout, asserting it
/// succeeded.
pub(crate) fn run_client(script: &str, args: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
    let out = std::process::Command::new(clients_python()).arg(&path).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
