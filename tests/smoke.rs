//! The main job end to end against the test bed: `apply` of a whole environment (a copy of
//! `dev` with a unique name, its own topics and metrics port) deploys the local worker, and
//! `smoke-test` passes on real data; then three sabotages made with plain SDK calls or a signal
//! (versioning suspended, the TLS-only policy deleted, the worker stopped) each make it fail with
//! the reason, and `apply` repairs each; `destroy` stops the worker.
//!
//! The real datasets are read from `$INDUTECH_DATA_DIR`, else `../shared/data` next to the
//! repository, else `/work/shared/data`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use indutech::aws::Aws;
use indutech::config::environment::Environment;

mod common;

use common::{STREAMS, WHOLE_BED, bed_is_up, data_dir, exited, write_env};

struct TestEnv {
    dir: PathBuf,
    path: PathBuf,
    environment: Environment,
    aws: Aws,
}

impl TestEnv {
    async fn new() -> TestEnv {
        bed_is_up(WHOLE_BED);
        // A metrics port of its own: other tests' workers may be running.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (dir, path, _) = write_env("s", true, |text| {
            text.replace("runtime = \"local\"\n", &format!("runtime = \"local\"\nmetrics_port = {port}\n"))
        });
        let environment = indutech::config::load(path.to_str().unwrap()).expect("the test environment is valid");
        let aws = Aws::new(&environment).await;
        TestEnv { dir, path, environment, aws }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_indutech"))
            .args(args)
            .arg("--env")
            .arg(&self.path)
            .env("NO_COLOR", "1")
            .env("INDUTECH_STATE_DIR", self.dir.join("state"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn expect(&self, args: &[&str], code: i32) -> String {
        exited(args, &self.run(args), code)
    }

    /// Runs the smoke test (small samples); returns its exit code and checks by name.
    fn smoke(&self) -> (i32, Vec<serde_json::Value>) {
        self.smoke_with(&[])
    }

    /// [`TestEnv::smoke`] with more arguments.
    fn smoke_with(&self, more: &[&str]) -> (i32, Vec<serde_json::Value>) {
        let data = data_dir();
        let args =
            ["smoke-test", "--json", "--data", data.to_str().unwrap(), "--sample-rows", "500", "--tickets", "300"];
        let out = self.run(&[&args[..], &["--timeout", "60"], more].concat());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let checks: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("smoke-test --json printed no JSON ({e})\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
        });
        (out.status.code().unwrap(), checks)
    }

    fn worker_pid(&self) -> Option<u32> {
        let file = self.dir.join("state").join(&self.environment.name).join("worker.json");
        let text = std::fs::read_to_string(file).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["pid"].as_u64().map(|p| p as u32)
    }
}

fn row<'a>(checks: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check `{name}` in {checks:#?}"))
}

fn failed(checks: &[serde_json::Value]) -> Vec<String> {
    checks.iter().filter(|c| c["status"] == "fail").map(|c| format!("{}: {}", c["name"], c["detail"])).collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_deploys_the_worker_smoke_test_passes_and_fails_on_three_sabotages() {
    let t = TestEnv::new().await;
    let out = t.expect(&["apply", "--auto-approve"], 0);
    assert!(out.contains("Apply complete"), "{out}");
    let pid = t.worker_pid().expect("apply wrote the worker's PID file");
    assert!(alive(pid), "the worker apply started is not running");
    let plan = t.expect(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("No changes."), "{plan}");

    // The stations' reference table, loaded as DMS's full load would write it.
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/environments/erp/stations.csv");
    let out = t.expect(&["load", "--table", "erp.stations", "--from", csv], 0);
    let raw = indutech::model::bucket_name(&t.environment, "raw");
    assert_eq!(out.trim(), format!("wrote s3://{raw}/erp/dbo/stations/LOAD00000001.parquet (12 rows)"));
    // DuckDB (an SQL engine indutech did not write) reads it through the Glue table: its
    // location, each column of the type Glue declares.
    let database = indutech::model::glue_database_name(&t.environment);
    let table = t.aws.glue().get_table().database_name(&database).name("stations").send().await.unwrap();
    let descriptor = table.table().unwrap().storage_descriptor().unwrap().clone();
    let columns: Vec<[&str; 2]> =
        descriptor.columns().iter().map(|c| [c.name(), c.r#type().unwrap_or_default()]).collect();
    let location = descriptor.location().unwrap();
    let columns = serde_json::to_string(&columns).unwrap();
    let read = common::run_client("duckdb_glue.py", &["http://127.0.0.1:4566", location, &columns, "-"]);
    let read: serde_json::Value = serde_json::from_str(&read).unwrap();
    assert_eq!(read["mismatches"], serde_json::json!([]), "DuckDB reads other types than Glue declares: {read}");
    assert_eq!(read["counts"], serde_json::json!({"": 12}), "{read}");

    // Healthy: every check passes or says what the target cannot verify; data landed.
    let (code, checks) = t.smoke();
    assert_eq!(failed(&checks), Vec::<String>::new());
    assert_eq!(code, 0);
    for stream in STREAMS {
        let landed = row(&checks, &format!("data {stream}: every record landed exactly once"));
        assert_eq!(landed["status"], "pass", "{landed}");
        let sql = row(&checks, &format!("data {stream}: Spectrum and Athena read the files as the Glue columns"));
        assert_eq!(sql["status"], "pass", "{sql}");
        // The count through Spectrum runs on an account; the bed's Data API runs no SQL.
        let count = row(&checks, &format!("data {stream}: SELECT count(*) through Spectrum's external schema"));
        assert_eq!(count["status"], "not_verifiable", "{count}");
        assert!(count["detail"].as_str().unwrap().contains("runs no SQL"), "{count}");
    }
    let tickets = row(&checks, "data client_tickets: every record landed exactly once");
    assert!(tickets["detail"].as_str().unwrap().ends_with("= 300 produced"), "{tickets}");
    assert_eq!(row(&checks, "lake: versioning enabled")["status"], "pass");
    let cold = row(&checks, "cold: ERP tables in the raw zone, readable through their Glue columns");
    assert_eq!(cold["status"], "pass", "{cold}");
    assert_eq!(cold["detail"], "stations: 12 rows in 1 file(s)");
    assert_eq!(row(&checks, "worker: deployed, running this binary")["status"], "pass");

    // The sandbox (what a real account gets with --write-test-data): the same checks pass on
    // topics, a consumer group, lake prefixes and Glue tables of its own, all removed at the
    // end; production's topics, lake objects and catalog are exactly as before.
    let streams: Vec<std::sync::Arc<indutech::config::stream::Stream>> =
        t.environment.streams.iter().map(|s| std::sync::Arc::new(s.clone())).collect();
    let kafka = indutech::kafka::plaintext(indutech::model::bootstrap_servers(&t.environment));
    let group = indutech::model::group_id(&t.environment);
    let offsets = || async {
        let status = indutech::worker::status::read_offsets(&kafka, &group, &streams).await.unwrap();
        status
            .iter()
            .flat_map(|s| s.partitions.iter().map(move |p| (s.stream.clone(), p.partition, p.high, p.group_committed)))
            .collect::<Vec<_>>()
    };
    let lake = indutech::worker::lake::Lake::new(&t.environment, &t.aws);
    let objects = || async {
        let mut all = Vec::new();
        for bucket in [&lake.curated, &lake.rejected] {
            all.extend(lake.list_versions(bucket, "").await.unwrap().into_iter().map(|(k, v)| (bucket.clone(), k, v)));
        }
        all.sort();
        all
    };
    let database = indutech::model::glue_database_name(&t.environment);
    let tables = || async {
        let out = t.aws.glue().get_tables().database_name(&database).send().await.unwrap();
        let mut names: Vec<String> = out.table_list().iter().map(|t| t.name().to_owned()).collect();
        names.sort();
        names
    };
    let (offsets_before, objects_before, tables_before) = (offsets().await, objects().await, tables().await);
    // What a smoke test killed before its removal would leave: a topic, lake objects, a Glue
    // table. The next sandboxed run removes them first.
    let leftover_topic = format!("{}.smoke_deadbeef", t.environment.streams[0].topic);
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> = kafka.config().create().unwrap();
        let created = admin
            .create_topics(&[NewTopic::new(&leftover_topic, 1, TopicReplication::Fixed(1))], &AdminOptions::new())
            .await
            .unwrap();
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    }
    let leftover_stream = format!("{}_smoke_deadbeef", t.environment.streams[0].name);
    t.aws
        .s3()
        .put_object()
        .bucket(&lake.curated)
        .key(format!("{leftover_stream}/dt=2026-01-01/left.parquet"))
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"left"))
        .send()
        .await
        .unwrap();
    t.aws
        .glue()
        .create_table()
        .database_name(&database)
        .table_input(aws_sdk_glue::types::TableInput::builder().name(&leftover_stream).build().unwrap())
        .send()
        .await
        .unwrap();
    let (code, checks) = t.smoke_with(&["--sandbox"]);
    assert_eq!(failed(&checks), Vec::<String>::new());
    assert_eq!(code, 0);
    for stream in STREAMS {
        let landed = checks
            .iter()
            .find(|c| {
                let name = c["name"].as_str().unwrap();
                name.starts_with(&format!("data {stream}_smoke_")) && name.ends_with("every record landed exactly once")
            })
            .unwrap_or_else(|| panic!("no sandbox row of {stream}: {checks:#?}"));
        assert_eq!(landed["status"], "pass", "{landed}");
    }
    let removed = row(&checks, "data: sandbox removed (topics, consumer group, lake prefixes, Glue tables)");
    assert_eq!(removed["status"], "pass", "{removed}");
    assert!(removed["detail"].as_str().unwrap().ends_with("what earlier runs left: smoke_deadbeef"), "{removed}");
    assert_eq!(offsets().await, offsets_before, "the sandbox wrote into production's topics or group");
    assert_eq!(objects().await, objects_before, "the sandbox left objects or touched production's");
    assert_eq!(tables().await, tables_before, "the sandbox left Glue tables");
    let topics: Vec<String> = {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};
        let consumer: BaseConsumer = kafka.config().create().unwrap();
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).unwrap();
        metadata.topics().iter().map(|t| t.name().to_owned()).collect()
    };
    assert!(!topics.is_empty());
    assert!(topics.iter().all(|t| !t.contains(".smoke_")), "sandbox topics left: {topics:?}");

    // Sabotage 1: versioning suspended on the raw bucket.
    let raw = indutech::model::bucket_name(&t.environment, "raw");
    t.aws
        .s3()
        .put_bucket_versioning()
        .bucket(&raw)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (code, checks) = t.smoke();
    assert_eq!(code, 1);
    let versioning = row(&checks, "lake: versioning enabled");
    assert_eq!(versioning["status"], "fail");
    let detail = versioning["detail"].as_str().unwrap();
    assert!(detail.contains("aws_s3_bucket_versioning.raw") && detail.contains("Suspended"), "{detail}");
    assert_eq!(row(&checks, "plan is empty")["status"], "fail");
    t.expect(&["apply", "--auto-approve"], 0);

    // Sabotage 2: the TLS-only policy of the curated bucket deleted.
    let curated = indutech::model::bucket_name(&t.environment, "curated");
    t.aws.s3().delete_bucket_policy().bucket(&curated).send().await.unwrap();
    let (code, checks) = t.smoke();
    assert_eq!(code, 1);
    let policy = row(&checks, "lake: TLS-only bucket policy");
    assert_eq!(policy["status"], "fail");
    assert!(policy["detail"].as_str().unwrap().contains("aws_s3_bucket_policy.curated"), "{policy}");
    t.expect(&["apply", "--auto-approve"], 0);
    let (code, checks) = t.smoke();
    assert_eq!((code, failed(&checks)), (0, vec![]), "apply did not repair the policy");

    // Sabotage 3: the worker stopped. The worker row says so and no data is checked.
    let pid = t.worker_pid().unwrap();
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!alive(pid), "the worker did not stop on SIGTERM");
    let (code, checks) = t.smoke();
    assert_eq!(code, 1);
    let worker = row(&checks, "worker: deployed, running this binary");
    assert_eq!(worker["status"], "fail");
    assert!(worker["detail"].as_str().unwrap().contains("running is false (want true)"), "{worker}");
    let data = row(&checks, "data: replay, land, read back");
    assert!(data["detail"].as_str().unwrap().starts_with("not attempted: the worker"), "{data}");
    let plan = t.expect(&["plan"], 0);
    assert!(plan.contains("indutech_local_worker.worker"), "{plan}");
    t.expect(&["apply", "--auto-approve"], 0);
    let restarted = t.worker_pid().unwrap();
    assert!(restarted != pid && alive(restarted));

    // Destroy stops the worker gracefully and removes everything.
    t.expect(&["destroy", "--auto-approve", "--force-delete-data"], 0);
    assert!(!alive(restarted), "destroy left the worker running");
    assert!(t.worker_pid().is_none(), "destroy left the PID file");
    let plan = t.expect(&["plan", "--destroy", "--detailed-exitcode"], 0);
    assert!(plan.contains("Nothing of environment"), "{plan}");
}

/// `environments/erp/stations.csv` is what the Beijing dataset says about each station
/// (environments/erp/README.md): recomputed here from the station files.
#[test]
fn the_shipped_stations_table_is_what_the_dataset_says() {
    let dir = data_dir().join("beijing_multisite_air_quality");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 12);
    let mut want = String::from("StationName,FirstReadingAt,LastReadingAt,HourlyRows,PM25MissingHours\n");
    for file in files {
        let mut reader = csv::Reader::from_path(&file).unwrap();
        let header = reader.headers().unwrap().clone();
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (year, month, day, hour, pm, station) =
            (at("year"), at("month"), at("day"), at("hour"), at("PM2.5"), at("station"));
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let utc = |r: &csv::StringRecord| {
            let local = chrono::NaiveDate::from_ymd_opt(
                r[year].parse().unwrap(),
                r[month].parse().unwrap(),
                r[day].parse().unwrap(),
            )
            .unwrap()
            .and_hms_opt(r[hour].parse().unwrap(), 0, 0)
            .unwrap();
            (local - chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M:%S").to_string()
        };
        let (first, last) = (records.first().unwrap(), records.last().unwrap());
        let missing = records.iter().filter(|r| &r[pm] == "NA").count();
        want.push_str(&format!("{},{},{},{},{missing}\n", &first[station], utc(first), utc(last), records.len()));
    }
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/environments/erp/stations.csv")).unwrap();
    assert_eq!(shipped, want);
}
