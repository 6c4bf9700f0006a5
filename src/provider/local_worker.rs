//! The worker's `local` runtime (the `dev` test bed): `indutech worker --env FILE` as a
//! supervised background process of this machine, in its own process group (a Ctrl-C in the
//! terminal that ran `apply` does not reach it), with a PID file and a log in the state folder
//! `.indutech/<env>/` below the current directory (git-ignored; `INDUTECH_STATE_DIR` moves it).
//!
//! Observed: the PID file, whether that process still runs a `worker` command, and which binary
//! it runs (the digest recorded at start, checked against `/proc/<pid>/exe`). Created: spawned
//! from the running binary and waited for (bounded) until it logs that it started. Deleted:
//! SIGTERM, which drains (flush, upload, commit) within `worker.drain_timeout_ms`; SIGKILL after
//! that deadline (safe: uncommitted records are read again by the next start).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Context, attributes, str_attr};
use crate::config::environment::Environment;
use crate::plan::kind::LocalWorkerKind;
use crate::plan::{Change, Observed, Resource};

/// How long a started worker may take to log "worker started" (it checks the buckets, the
/// Glue tables and the topics first).
const START_WAIT: Duration = Duration::from_secs(60);

/// What `apply` recorded about the process it started: `.indutech/<env>/worker.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PidFile {
    /// Process id.
    pub pid: u32,
    /// Digest of the binary it runs.
    pub binary_sha256: String,
    /// `(device, inode)` of that binary when it was started, to tell whether `/proc/<pid>/exe`
    /// is still that file without hashing it again.
    pub binary_file: (u64, u64),
    /// Digest of the environment settings it read ([`crate::desired::worker_config_sha256`]).
    pub config_sha256: String,
    /// Consumer group.
    pub consumer_group: String,
    /// Prometheus port on 127.0.0.1.
    pub metrics_port: u16,
    /// Streams it consumes.
    pub streams: Vec<String>,
    /// Environment file it was started with, absolute.
    pub environment_file: PathBuf,
    /// RFC 3339 start time.
    pub started_at: String,
}

/// The state folder of `environment`: `$INDUTECH_STATE_DIR/<env>` or `.indutech/<env>`.
pub fn state_dir(environment: &Environment) -> PathBuf {
    let root = std::env::var_os("INDUTECH_STATE_DIR").map_or_else(|| PathBuf::from(".indutech"), PathBuf::from);
    root.join(&environment.name)
}

/// The worker's PID file.
pub fn pid_path(environment: &Environment) -> PathBuf {
    state_dir(environment).join("worker.json")
}

/// The worker's log (appended to by every start).
pub fn log_path(environment: &Environment) -> PathBuf {
    state_dir(environment).join("worker.log")
}

/// The PID file, if there is one.
///
/// Errors: it exists but cannot be read or parsed.
pub fn read_pid_file(environment: &Environment) -> anyhow::Result<Option<PidFile>> {
    let path = pid_path(environment);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Whether process `pid` exists, has not exited, and runs `indutech worker` (not a process that
/// reused the PID).
pub fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').next()).unwrap_or("Z");
    if state == "Z" || state == "X" {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline.split(|b| *b == 0).any(|arg| arg == b"worker")
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

pub(super) async fn observe(
    ctx: &Context,
    LocalWorkerKind::Worker: LocalWorkerKind,
    _resource: &Resource,
) -> anyhow::Result<Observed> {
    let Some(file) = read_pid_file(&ctx.environment)? else { return Ok(Observed::Absent) };
    let running = is_running(file.pid);
    let binary = if running && file_id(Path::new(&format!("/proc/{}/exe", file.pid))) != Some(file.binary_file) {
        let exe = PathBuf::from(format!("/proc/{}/exe", file.pid));
        tokio::task::spawn_blocking(move || crate::artifact::Artifact::of_file(&exe))
            .await
            .context("hashing the worker's binary")??
            .sha256
    } else {
        file.binary_sha256.clone()
    };
    Ok(Observed::Present {
        id: file.pid.to_string(),
        attributes: attributes(vec![
            ("binary_sha256", json!(binary)),
            ("config_sha256", json!(file.config_sha256)),
            ("consumer_group", json!(file.consumer_group)),
            ("metrics_port", json!(file.metrics_port)),
            ("running", json!(running)),
            ("streams", json!(file.streams)),
        ]),
    })
}

pub(super) async fn create(
    ctx: &Context,
    LocalWorkerKind::Worker: LocalWorkerKind,
    resource: &Resource,
) -> anyhow::Result<()> {
    let environment = &ctx.environment;
    let binary = crate::artifact::Artifact::current()?;
    let want = str_attr(resource, "binary_sha256")?;
    if binary.sha256 != want {
        bail!("{}: this binary is not the one the plan was made with; plan again", resource.address);
    }
    if let Some(file) = read_pid_file(environment)?
        && is_running(file.pid)
    {
        bail!(
            "{}: a worker already runs as PID {} (started {}); plan again",
            resource.address,
            file.pid,
            file.started_at
        );
    }
    let dir = state_dir(environment);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = log_path(environment);
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let log_start = out.seek(SeekFrom::End(0))?;
    let err = out.try_clone()?;
    let streams: Vec<String> = environment.streams.iter().map(|s| s.name.clone()).collect();
    let mut command = std::process::Command::new(&binary.path);
    command
        .arg("worker")
        .arg("--env")
        .arg(&environment.file)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    std::os::unix::process::CommandExt::arg0(&mut command, "indutech");
    let mut child = command.spawn().with_context(|| format!("starting {} worker", binary.path.display()))?;
    let file = PidFile {
        pid: child.id(),
        binary_sha256: binary.sha256.clone(),
        // The child execs the same file (`/proc/self/exe` of this process).
        binary_file: file_id(&binary.path).unwrap_or_default(),
        config_sha256: str_attr(resource, "config_sha256")?.to_owned(),
        consumer_group: crate::model::group_id(environment),
        metrics_port: environment.worker.metrics_port,
        streams,
        environment_file: environment.file.clone(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let pid_file = pid_path(environment);
    std::fs::write(&pid_file, serde_json::to_vec_pretty(&file)?)
        .with_context(|| format!("writing {}", pid_file.display()))?;
    let started = Instant::now();
    loop {
        let written = read_from(&log, log_start);
        if written.contains("worker started") {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let _ = std::fs::remove_file(&pid_file);
            bail!(
                "the worker exited during start-up ({status}); last lines of {}:\n{}",
                log.display(),
                last_lines(&written, 20)
            );
        }
        if started.elapsed() > START_WAIT {
            bail!(
                "the worker (PID {}) did not report `worker started` within {}s; it keeps running: see {} \
                 and `indutech destroy --env {}` to stop it",
                file.pid,
                START_WAIT.as_secs(),
                log.display(),
                environment.name
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_string(&mut text);
    }
    text
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Starting again is the only change in place (`running` false -> true).
pub(super) async fn update(
    ctx: &Context,
    LocalWorkerKind::Worker: LocalWorkerKind,
    resource: &Resource,
    _change: &Change,
) -> anyhow::Result<()> {
    create(ctx, LocalWorkerKind::Worker, resource).await
}

pub(super) async fn delete(
    ctx: &Context,
    LocalWorkerKind::Worker: LocalWorkerKind,
    _change: &Change,
) -> anyhow::Result<()> {
    stop(&ctx.environment).await
}

/// Stops the environment's local worker, if one runs: SIGTERM, then SIGKILL once
/// `worker.drain_timeout_ms` plus 10 s have passed; removes the PID file.
///
/// Errors: the PID file cannot be read, or `kill` cannot be run.
pub async fn stop(environment: &Environment) -> anyhow::Result<()> {
    let Some(file) = read_pid_file(environment)? else { return Ok(()) };
    if is_running(file.pid) {
        signal(file.pid, "TERM")?;
        let deadline =
            Instant::now() + Duration::from_millis(environment.worker.drain_timeout_ms) + Duration::from_secs(10);
        while is_running(file.pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if is_running(file.pid) {
            tracing::warn!(
                pid = file.pid,
                "the worker did not stop within its drain deadline; killing it (nothing is lost: \
                 uncommitted records are read again by the next start)"
            );
            signal(file.pid, "KILL")?;
        }
    }
    let path = pid_path(environment);
    std::fs::remove_file(&path)
        .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
        .with_context(|| format!("removing {}", path.display()))
}

fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() && is_running(pid) {
        bail!("kill -{signal} {pid} failed ({status})");
    }
    Ok(())
}
