//! The worker, `produce` and `status` of the real binary against the test bed: LocalStack's S3,
//! the moto sidecar's Glue and the Tansu broker. Each test has its own environment (a copy of
//! `dev` with a unique name, so its own buckets, Glue database and consumer group) and its own
//! topics; the lake is read back with the parquet crate, independently of the worker's code.
//!
//! The real datasets are read from `$INDUTECH_DATA_DIR`, else `../shared/data` next to the
//! repository, else `/work/shared/data`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use indutech::aws::Aws;
use indutech::config::environment::Environment;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

mod common;

use common::{STREAMS, WHOLE_BED, bed_is_up, data_dir, exited, write_env};

/// A throw-away environment with its own topics `<name>-<stream>` (3 partitions each), its lake
/// and catalog applied.
struct TestEnv {
    path: PathBuf,
    name: String,
    environment: Environment,
    aws: Aws,
}

impl TestEnv {
    async fn new(worker_settings: &str) -> TestEnv {
        TestEnv::new_edited(worker_settings, |text| text).await
    }

    /// [`TestEnv::new`], the environment's text changed further by `edit`.
    async fn new_edited(worker_settings: &str, edit: impl Fn(String) -> String) -> TestEnv {
        bed_is_up(WHOLE_BED);
        let (_, path, name) = write_env("w", true, |mut text| {
            let worker = text.find("[worker]").unwrap();
            let end = text[worker..].find("\n\n").map_or(text.len(), |e| worker + e);
            text.replace_range(worker..end, &format!("[worker]\nruntime = \"local\"\n{worker_settings}"));
            edit(text)
        });
        let environment = indutech::config::load(path.to_str().unwrap()).expect("the test environment is valid");
        let aws = Aws::new(&environment).await;
        let env = TestEnv { path, name, environment, aws };
        env.expect(&["apply", "--component", "lake", "--component", "catalog", "--auto-approve"], 0);
        env.create_topics().await;
        env
    }

    /// The partition values registered in Glue for `stream`'s table.
    async fn glue_partitions(&self, stream: &str) -> BTreeSet<String> {
        let database = indutech::model::glue_database_name(&self.environment);
        let mut registered = BTreeSet::new();
        let mut pages =
            self.aws.glue().get_partitions().database_name(&database).table_name(stream).into_paginator().send();
        while let Some(page) = pages.next().await {
            for p in page.unwrap().partitions() {
                registered.insert(p.values()[0].clone());
            }
        }
        registered
    }

    /// DuckDB (an SQL engine indutech did not write) reads `stream` as the Glue catalog
    /// describes it: the table's location, its partition key as hive partitioning, each column
    /// of the type Glue declares. Asserts that it finds the lake's rows and `dt` values.
    async fn assert_sql_engine_reads_the_catalog(&self, stream: &str, lake: &Lake) {
        let database = indutech::model::glue_database_name(&self.environment);
        let table = self.aws.glue().get_table().database_name(&database).name(stream).send().await.unwrap();
        let table = table.table().unwrap();
        let descriptor = table.storage_descriptor().unwrap();
        let columns: Vec<[&str; 2]> =
            descriptor.columns().iter().map(|c| [c.name(), c.r#type().unwrap_or_default()]).collect();
        let key = table.partition_keys()[0].name();
        let out = common::run_client(
            "duckdb_glue.py",
            &["http://127.0.0.1:4566", descriptor.location().unwrap(), &serde_json::to_string(&columns).unwrap(), key],
        );
        let read: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(read["mismatches"], serde_json::json!([]), "{stream}: DuckDB reads other types than Glue declares");
        let counts = read["counts"].as_object().unwrap();
        let total: u64 = counts.values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(total, lake.rows() as u64, "{stream}: DuckDB counts other rows through the catalog");
        let dates: BTreeSet<String> = counts.keys().cloned().collect();
        assert_eq!(dates, lake.dates, "{stream}: DuckDB sees other {key} values");
    }

    fn topic(&self, stream: &str) -> String {
        format!("{}-{stream}", self.name)
    }

    async fn create_topics(&self) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let connection =
            indutech::kafka::connection(&self.environment, &self.aws, indutech::kafka::Principal::Admin).await.unwrap();
        let admin: AdminClient<_> = connection.config().create().unwrap();
        let topics: Vec<String> = STREAMS.iter().map(|s| self.topic(s)).collect();
        let new: Vec<NewTopic<'_>> = topics.iter().map(|t| NewTopic::new(t, 3, TopicReplication::Fixed(1))).collect();
        for result in admin.create_topics(&new, &AdminOptions::new()).await.unwrap() {
            result.unwrap();
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_indutech"));
        command.args(args).arg("--env").arg(&self.path).env("NO_COLOR", "1").stdin(Stdio::null());
        command
    }

    fn expect(&self, args: &[&str], code: i32) -> String {
        exited(args, &self.command(args).output().unwrap(), code)
    }

    /// A worker in the background, its log in the test folder.
    fn spawn_worker(&self, extra: &[&str]) -> Child {
        self.spawn_worker_logged(extra).0
    }

    fn spawn_worker_logged(&self, extra: &[&str]) -> (Child, PathBuf) {
        let log = self.path.with_extension(format!("worker-{}.log", uuid::Uuid::new_v4().simple()));
        let mut args = vec!["worker"];
        args.extend_from_slice(extra);
        if !extra.iter().any(|a| a.starts_with("--metrics-addr")) {
            args.push("--no-metrics");
        }
        let child =
            self.command(&args).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        (child, log)
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.expect(&["status", "--json"], 0)).unwrap()
    }

    /// Waits (bounded) until every partition of `streams` has a commit at its high watermark.
    fn wait_until_caught_up(&self, streams: &[&str], bound: Duration) {
        let started = Instant::now();
        loop {
            let status = self.status();
            let done =
                status.as_array().unwrap().iter().filter(|s| streams.contains(&s["stream"].as_str().unwrap())).all(
                    |s| {
                        s["partitions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .all(|p| p["committed"].as_i64().unwrap_or(0) == p["high"].as_i64().unwrap())
                    },
                );
            if done {
                return;
            }
            assert!(started.elapsed() < bound, "the worker did not catch up within {bound:?}: {status:#}");
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn high_watermarks(&self, stream: &str) -> BTreeMap<i32, i64> {
        let status = self.status();
        let s = status.as_array().unwrap().iter().find(|s| s["stream"] == stream).unwrap();
        s["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["partition"].as_i64().unwrap() as i32, p["high"].as_i64().unwrap()))
            .collect()
    }

    /// Everything visible in the lake for `stream`'s topic.
    async fn read_lake(&self, stream: &str) -> Lake {
        let s3 = self.aws.s3();
        let topic = self.topic(stream);
        let mut lake = Lake::default();
        for zone in ["curated", "rejected"] {
            let bucket = indutech::model::bucket_name(&self.environment, zone);
            let mut pages = s3.list_objects_v2().bucket(&bucket).prefix(format!("{stream}/")).into_paginator().send();
            while let Some(page) = pages.next().await {
                for object in page.unwrap().contents() {
                    let key = object.key().unwrap().to_owned();
                    let file = key.rsplit('/').next().unwrap();
                    if !file.starts_with(&format!("{topic}+")) {
                        continue;
                    }
                    let dt = key.split('/').nth(1).unwrap().strip_prefix("dt=").unwrap().to_owned();
                    let body = s3
                        .get_object()
                        .bucket(&bucket)
                        .key(&key)
                        .send()
                        .await
                        .unwrap()
                        .body
                        .collect()
                        .await
                        .unwrap()
                        .into_bytes();
                    if zone == "curated" {
                        lake.dates.insert(dt);
                        let builder = ParquetRecordBatchReaderBuilder::try_new(body).unwrap();
                        let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
                        // Every row says where it was read: partition and offset columns.
                        for batch in &batches {
                            let partitions =
                                batch.column_by_name("kafka_partition").unwrap().as_primitive::<Int32Type>();
                            let offsets = batch.column_by_name("kafka_offset").unwrap().as_primitive::<Int64Type>();
                            for i in 0..batch.num_rows() {
                                lake.offsets.entry(partitions.value(i)).or_default().push(offsets.value(i));
                            }
                        }
                        lake.batches.extend(batches);
                    } else {
                        for line in std::str::from_utf8(&body).unwrap().lines() {
                            let record: serde_json::Value = serde_json::from_str(line).unwrap();
                            assert_eq!(record["topic"], topic.as_str());
                            let partition = record["partition"].as_i64().unwrap() as i32;
                            lake.offsets.entry(partition).or_default().push(record["offset"].as_i64().unwrap());
                            lake.rejected.push(record);
                        }
                    }
                }
            }
        }
        lake
    }

    /// Every offset of every partition appears exactly once among the visible objects: read
    /// here with the parquet crate, by pyarrow (a reader indutech did not write), and proven by
    /// `indutech audit`.
    async fn assert_exactly_once(&self, stream: &str) -> Lake {
        self.assert_exactly_once_read_by(stream, true).await
    }

    /// [`Self::assert_exactly_once`], with the pyarrow reader only when `pyarrow`.
    async fn assert_exactly_once_read_by(&self, stream: &str, pyarrow: bool) -> Lake {
        let lake = self.read_lake(stream).await;
        let curated = indutech::model::bucket_name(&self.environment, "curated");
        let rejected = indutech::model::bucket_name(&self.environment, "rejected");
        let seen: serde_json::Value = if pyarrow {
            serde_json::from_str(&common::run_client(
                "lake_offsets.py",
                &["http://127.0.0.1:4566", &curated, &rejected, stream],
            ))
            .unwrap()
        } else {
            serde_json::Value::Null
        };
        for (partition, high) in self.high_watermarks(stream).into_iter().filter(|_| pyarrow) {
            let p = &seen[partition.to_string()];
            if high == 0 {
                assert!(p.is_null(), "{stream}/{partition}: pyarrow sees rows of an empty partition: {p}");
                continue;
            }
            assert_eq!(p["duplicates"], serde_json::json!({}), "{stream}/{partition}: pyarrow sees duplicates");
            assert_eq!(
                (p["count"].as_i64(), p["min"].as_i64(), p["max"].as_i64()),
                (Some(high), Some(0), Some(high - 1)),
                "{stream}/{partition}: pyarrow does not see every offset 0..{high} once: {p}"
            );
        }
        let audit = self.command(&["audit", "--stream", stream]).output().unwrap();
        exited(&["audit", "--stream", stream], &audit, 0);
        for (partition, high) in self.high_watermarks(stream) {
            let mut offsets = lake.offsets.get(&partition).cloned().unwrap_or_default();
            offsets.sort_unstable();
            let before = offsets.len();
            offsets.dedup();
            assert_eq!(before, offsets.len(), "{stream}/{partition}: {} duplicate offsets", before - offsets.len());
            assert_eq!(
                offsets,
                (0..high).collect::<Vec<_>>(),
                "{stream}/{partition}: offsets 0..{high} not all present"
            );
        }
        lake
    }
}

#[derive(Default)]
struct Lake {
    batches: Vec<RecordBatch>,
    offsets: HashMap<i32, Vec<i64>>,
    rejected: Vec<serde_json::Value>,
    dates: BTreeSet<String>,
}

impl Lake {
    fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn strings(&self, column: &str) -> Vec<Option<String>> {
        self.batches
            .iter()
            .flat_map(|b| {
                let array = b.column_by_name(column).unwrap().as_string::<i32>().clone();
                (0..array.len()).map(move |i| array.is_valid(i).then(|| array.value(i).to_owned())).collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The category a generated ticket must get, from its subject alone (the generator's bodies
/// hold none of the keywords): an oracle independent of the worker's matcher.
fn expected_category(subject: &str) -> &'static str {
    let s = subject.to_lowercase();
    let has = |w: &str| s.split(|c: char| !c.is_alphanumeric()).any(|t| t == w);
    if ["invoice", "refund", "payment", "charge", "billing"].iter().any(|w| has(w)) {
        "billing"
    } else if ["password", "login", "account", "2fa"].iter().any(|w| has(w)) {
        "account"
    } else if ["crash", "error", "bug", "outage", "sensor", "timeout"].iter().any(|w| has(w)) {
        "technical"
    } else if ["delivery", "shipment", "tracking", "parcel"].iter().any(|w| has(w)) {
        "logistics"
    } else {
        "other"
    }
}

/// GET /metrics over plain HTTP/1.0 ("" while the endpoint is not up yet).
fn scrape(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn stop(mut child: Child, signal: &str) -> std::process::ExitStatus {
    Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the worker did not exit within 60 s of SIG{signal}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn real_datasets_and_generated_tickets_land_exactly_once_typed_and_categorised() {
    let env = TestEnv::new("flush_interval_secs = 2\ntarget_file_size_bytes = 8388608\n").await;
    let data = data_dir();
    let incidents = data.join("itsm_incident_event_log/incident_event_log.csv");
    let sensors = data.join("beijing_multisite_air_quality");
    env.expect(&["produce", "--stream", "incident_events", "--from", incidents.to_str().unwrap()], 0);
    env.expect(&["produce", "--stream", "sensor_readings", "--from", sensors.to_str().unwrap()], 0);
    env.expect(&["produce", "--stream", "client_tickets", "--count", "5000", "--malformed", "0.01", "--seed", "42"], 0);

    let worker = env.spawn_worker(&[]);
    env.wait_until_caught_up(&STREAMS, Duration::from_secs(900));
    assert!(stop(worker, "TERM").success(), "SIGTERM must end the worker with 0");

    // Tickets: every offset once; valid rows typed and categorised; malformed ones rejected
    // with their reason.
    let tickets: Vec<indutech::produce::Record> =
        indutech::produce::TicketGenerator::new(42, 0.01).take(5000).collect();
    let lake = env.assert_exactly_once("client_tickets").await;
    let malformed: Vec<&indutech::produce::Record> = tickets.iter().filter(|t| t.malformed.is_some()).collect();
    assert!(!malformed.is_empty());
    assert_eq!(lake.rows(), 5000 - malformed.len());
    assert_eq!(lake.rejected.len(), malformed.len());
    for record in &malformed {
        let payload = String::from_utf8_lossy(&record.payload);
        let rejected = lake
            .rejected
            .iter()
            .find(|r| r["payload"] == payload.as_ref())
            .expect("every malformed record is in the rejected zone");
        let reason = rejected["reason"].as_str().unwrap();
        let expected = match record.malformed.unwrap() {
            "not JSON" => "not a JSON object",
            "missing client_id" => "field `client_id`: missing required field",
            "priority is a number" => "field `priority`: expected string, got a number",
            "unparsable created_at" => "field `created_at`: `31/11/2026 25:61` is not an RFC 3339 timestamp",
            _ => "field `channel`: `fax` is not one of email, phone, chat, web",
        };
        assert!(reason.starts_with(expected), "{reason} for {:?}", record.malformed);
    }
    env.assert_sql_engine_reads_the_catalog("client_tickets", &lake).await;
    let ids = lake.strings("ticket_id");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "duplicate ticket ids");
    let categories: HashMap<String, String> =
        ids.iter().zip(lake.strings("category")).map(|(id, c)| (id.clone().unwrap(), c.unwrap())).collect();
    for record in tickets.iter().filter(|t| t.malformed.is_none()) {
        let ticket: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
        let id = ticket["ticket_id"].as_str().unwrap();
        assert_eq!(categories[id], expected_category(ticket["subject"].as_str().unwrap()), "{ticket}");
    }

    // Incidents: every row of the real file, typed ('?' is null, d/m/yyyy HH:MM dates).
    let lake = env.assert_exactly_once("incident_events").await;
    assert_eq!(lake.rows() + lake.rejected.len(), 119_998, "the file has 119998 events");
    assert_eq!(lake.rejected.len(), 0, "{:?}", lake.rejected.first());
    env.assert_sql_engine_reads_the_catalog("incident_events", &lake).await;
    let numbers = lake.strings("number");
    let first = numbers.iter().position(|n| n.as_deref() == Some("INC0000045")).unwrap();
    let (mut batch_index, mut row) = (0, first);
    while row >= lake.batches[batch_index].num_rows() {
        row -= lake.batches[batch_index].num_rows();
        batch_index += 1;
    }
    let batch = &lake.batches[batch_index];
    let opened = batch.column_by_name("opened_at").unwrap().as_primitive::<TimestampMicrosecondType>().value(row);
    assert_eq!(opened, 1_456_708_560_000_000, "29/2/2016 01:16 UTC");

    // Sensor readings: every row of the 12 files; the reading's hour is Beijing time. (Not read
    // by pyarrow too: the replay makes some 17,000 small files, which take minutes to read
    // through LocalStack once more; the audit reads them.)
    let lake = env.assert_exactly_once_read_by("sensor_readings", false).await;
    assert_eq!(lake.rows() + lake.rejected.len(), 420_768, "12 stations x 35064 hours");
    assert_eq!(lake.rejected.len(), 0, "{:?}", lake.rejected.first());
    let stations = lake.strings("station");
    let pairs: BTreeSet<(String, i64)> = lake
        .batches
        .iter()
        .flat_map(|b| {
            let rn = b.column_by_name("row_number").unwrap().as_primitive::<Int64Type>().clone();
            (0..rn.len()).map(move |i| rn.value(i)).collect::<Vec<_>>()
        })
        .zip(stations.iter())
        .map(|(rn, s)| (s.clone().unwrap(), rn))
        .collect();
    assert_eq!(pairs.len(), 420_768, "(station, row_number) is unique");
    let batch = lake.batches.iter().find(|b| b.num_rows() > 0).unwrap();
    let pm = batch.column_by_name("pm2_5").unwrap().as_primitive::<Float64Type>();
    assert!(pm.null_count() < pm.len(), "PM2.5 readings are typed doubles");
    let registered = env.glue_partitions("sensor_readings").await;
    assert_eq!(registered, lake.dates, "every dt that has data is a Glue partition");

    // status agrees with the lake.
    let table = env.expect(&["status"], 0);
    assert!(
        table.contains(&format!(
            "{:<18} {:>10} {:>10} {:>8} {:>10} {:>9}",
            "sensor_readings", 420_768, 420_768, 0, 420_768, 0
        )),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_partitioned_by_month_lands_one_file_per_month_and_partition() {
    // One flush at the end (SIGTERM): four years of one station's hourly readings.
    let env = TestEnv::new_edited("flush_interval_secs = 3600\ntarget_file_size_bytes = 268435456\n", |text| {
        text.replacen(
            "[streams.sensor_readings]\n",
            "[streams.sensor_readings]\npartition_granularity = \"month\"\n",
            1,
        )
    })
    .await;
    let station = data_dir().join("beijing_multisite_air_quality/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    env.expect(&["produce", "--stream", "sensor_readings", "--from", station.to_str().unwrap()], 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("--metrics-addr=127.0.0.1:{port}");
    let worker = env.spawn_worker(&["--stream", "sensor_readings", &addr]);
    let consumed = "indutech_worker_records_in_total{stream=\"sensor_readings\"} 35064";
    let started = Instant::now();
    while !scrape(port).contains(consumed) {
        assert!(started.elapsed() < Duration::from_secs(300), "the worker did not consume 35064 records");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(stop(worker, "TERM").success());
    env.wait_until_caught_up(&["sensor_readings"], Duration::from_secs(10));
    // Every offset once, read by pyarrow too; partition values are months.
    let lake = env.assert_exactly_once("sensor_readings").await;
    assert_eq!((lake.rows(), lake.rejected.len()), (35_064, 0));
    // 2013-03-01 00:00 in Beijing is 2013-02-28 16:00 UTC: 2013-02 to 2017-02.
    assert_eq!(lake.dates.len(), 49, "{:?}", lake.dates);
    assert!(
        lake.dates.iter().all(|d| d.len() == 7 && d.as_bytes()[4] == b'-' && d[..4].parse::<u32>().is_ok()),
        "YYYY-MM values: {:?}",
        lake.dates
    );
    // One station is one message key, so one partition: one file per month.
    let curated = indutech::model::bucket_name(&env.environment, "curated");
    let mut files = 0;
    let mut pages = env.aws.s3().list_objects_v2().bucket(&curated).prefix("sensor_readings/").into_paginator().send();
    while let Some(page) = pages.next().await {
        files += page.unwrap().contents().iter().filter(|o| o.key().unwrap().ends_with(".parquet")).count();
    }
    assert_eq!(files, 49, "one file per month and partition");
    let registered = env.glue_partitions("sensor_readings").await;
    assert_eq!(registered, lake.dates, "every month that has data is a Glue partition");
    env.assert_sql_engine_reads_the_catalog("sensor_readings", &lake).await;
}

/// Every metric the Grafana dashboard (`localstack/grafana/dashboards/`) queries is one a
/// running worker exposes, from its start (counters at 0) or once it has flushed.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_queries_only_metrics_a_running_worker_exposes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/grafana/dashboards/indutech-worker.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut queried = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("indutech_") {
                let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[at + name.len()..];
                queried.insert(name);
            }
        }
    }
    assert!(queried.len() >= 12, "the dashboard queries {queried:?}");

    let env = TestEnv::new(
        "flush_interval_secs = 1
",
    )
    .await;
    env.expect(&["produce", "--stream", "client_tickets", "--count", "500", "--malformed", "0.02", "--seed", "3"], 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("--metrics-addr=127.0.0.1:{port}");
    let worker = env.spawn_worker(&["--stream", "client_tickets", &addr]);
    let exposed = |text: &str, name: &str| {
        text.lines()
            .any(|l| !l.starts_with('#') && (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))))
    };
    let started = Instant::now();
    let missing = loop {
        let text = scrape(port);
        let missing: Vec<&String> = queried.iter().filter(|name| !exposed(&text, name)).collect();
        if missing.is_empty() {
            break missing;
        }
        if started.elapsed() > Duration::from_secs(90) {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(stop(worker, "TERM").success());
    assert!(missing.is_empty(), "the dashboard queries metrics a running worker does not expose: {missing:?}");
}

/// A worker started right after others were killed gets partitions within this bound (the
/// group's session timeout, 6 s, plus a rebalance; the README says so).
const RESTART_BOUND_SECS: u64 = 60;

#[tokio::test(flavor = "multi_thread")]
async fn workers_killed_one_after_the_other_and_restarted_at_once_come_back() {
    let env = TestEnv::new(
        "flush_interval_secs = 1
target_file_size_bytes = 1048576
",
    )
    .await;
    let producer = spawn_confluent_producer(&env.topic("client_tickets"), "lz4", 20_000, 1000, 0);
    let args = ["--stream", "client_tickets"];
    let mut rng = fastrand::Rng::with_seed(u64::from(std::process::id()) + 1);
    // A reader polls the lake through the whole crash loop.
    let reader = LakeReader::start(&env, "client_tickets");
    // Five workers each SIGKILLed 2-7 s after their start, the next one started at once.
    for _ in 0..5 {
        let child = env.spawn_worker(&args);
        std::thread::sleep(Duration::from_millis(2000 + rng.u64(0..5000)));
        assert!(!stop(child, "KILL").success());
    }
    let (sixth, log) = env.spawn_worker_logged(&args);
    let started = Instant::now();
    wait_for_log(&log, "partition taken over and resumed", Duration::from_secs(RESTART_BOUND_SECS));
    eprintln!("the sixth worker resumed a partition {:.1} s after its start", started.elapsed().as_secs_f64());
    producer_done(producer, 20_000);
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(300));
    assert!(stop(sixth, "TERM").success());
    let findings = reader.finish().await;
    assert!(findings.violations.is_empty(), "during the crash loop a reader saw:\n{}", findings.violations.join("\n"));
    let lake = env.assert_exactly_once("client_tickets").await;
    assert_eq!(lake.rows() + lake.rejected.len(), 20_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_workers_and_rebalances_still_land_every_offset_exactly_once() {
    let env = TestEnv::new("flush_interval_secs = 1\ntarget_file_size_bytes = 1048576\n").await;
    let producer = env
        .command(&["produce", "--stream", "client_tickets", "--count", "30000", "--rate", "200", "--malformed", "0.01"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let args = ["--stream", "client_tickets"];
    let mut logs = Vec::new();
    let mut rng = fastrand::Rng::with_seed(std::process::id().into());
    // (committed, produced) over the partitions.
    let committed = || -> (i64, i64) {
        let status = env.status();
        let stream = status.as_array().unwrap().iter().find(|s| s["stream"] == "client_tickets").unwrap().clone();
        let partitions = stream["partitions"].as_array().unwrap().clone();
        let sum = |key: &str| partitions.iter().map(|p| p[key].as_i64().unwrap_or(0)).sum::<i64>();
        (sum("committed"), sum("high"))
    };
    for _ in 0..4 {
        // Kill the worker at a random moment once it is ingesting: after it has committed
        // something of its own (so the next one resumes from a commit), within a flush or two.
        let (before, _) = committed();
        let (child, log) = env.spawn_worker_logged(&args);
        logs.push(log.clone());
        let started = Instant::now();
        while !std::fs::read_to_string(&log).unwrap().contains("partitions assigned by the group") {
            assert!(started.elapsed() < Duration::from_secs(RESTART_BOUND_SECS), "no partition within the bound");
            std::thread::sleep(Duration::from_millis(200));
        }
        loop {
            let (now, produced) = committed();
            if now > before || (now == produced && produced == 30_000) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(240), "the worker committed nothing within 240 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(rng.u64(0..2500)));
        // Restarted at once, as systemd's `Restart=` would.
        assert!(!stop(child, "KILL").success());
    }
    // Then two workers share the partitions (a rebalance) and finish the ingest.
    let workers = vec![env.spawn_worker_logged(&args), env.spawn_worker_logged(&args)];
    logs.extend(workers.iter().map(|w| w.1.clone()));
    assert!(producer.wait_with_output().unwrap().status.success());
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(600));
    for (worker, _) in workers {
        assert!(stop(worker, "TERM").success());
    }
    let text: String = logs.iter().map(|l| std::fs::read_to_string(l).unwrap()).collect();
    assert!(
        text.lines().any(|l| l.contains("partition taken over and resumed") && !l.contains("resume_from=0 ")),
        "no partition was ever resumed from a commit: the kills did not hit a running ingest"
    );
    let lake = env.assert_exactly_once("client_tickets").await;
    assert_eq!(lake.rows() + lake.rejected.len(), 30_000);
    let ids = lake.strings("ticket_id");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "duplicate ticket ids");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_uploads_and_commits_everything_consumed() {
    // Nothing would be flushed for an hour: only the signal makes the worker write.
    let env = TestEnv::new("flush_interval_secs = 3600\ntarget_file_size_bytes = 268435456\n").await;
    env.expect(&["produce", "--stream", "client_tickets", "--count", "4000", "--malformed", "0.02", "--seed", "7"], 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("--metrics-addr=127.0.0.1:{port}");
    let worker = env.spawn_worker(&["--stream", "client_tickets", &addr]);
    let started = Instant::now();
    loop {
        let text = scrape(port);
        if text.contains("indutech_worker_records_in_total{stream=\"client_tickets\"} 4000") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the worker did not consume 4000 records: {text}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(env.read_lake("client_tickets").await.offsets.is_empty(), "nothing is written before the signal");
    assert!(stop(worker, "TERM").success());
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(5));
    let lake = env.assert_exactly_once("client_tickets").await;
    let malformed =
        indutech::produce::TicketGenerator::new(7, 0.02).take(4000).filter(|t| t.malformed.is_some()).count();
    assert_eq!(lake.rows(), 4000 - malformed);
    assert_eq!(lake.rejected.len(), malformed);
}

#[tokio::test(flavor = "multi_thread")]
async fn large_files_are_uploaded_in_parts() {
    let env = TestEnv::new("flush_interval_secs = 10\n").await;
    let lake = indutech::worker::lake::Lake::new(&env.environment, &env.aws);
    let body: Vec<u8> = (0..17 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let sha = indutech::digest::sha256_hex(&body);
    lake.put(&lake.curated, "client_tickets/dt=2026-01-01/big.parquet", body.clone(), "application/octet-stream", &sha)
        .await
        .unwrap();
    let head = env
        .aws
        .s3()
        .head_object()
        .bucket(&lake.curated)
        .key("client_tickets/dt=2026-01-01/big.parquet")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert!(head.e_tag().unwrap().contains("-3"), "a 3-part upload's ETag ends in -3: {:?}", head.e_tag());
    assert_eq!(head.metadata().unwrap().get("sha256"), Some(&sha), "the content's digest travels in the metadata");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_exits_at_once_and_the_next_start_still_lands_everything_once() {
    // One flush for the whole backlog, at the signal: big enough that the drain takes a while.
    // (90 s, not more: when the bed's broker answers the restarted worker with an empty
    // assignment while it still counts the killed one, the worker rejoins after its idle check,
    // two flush intervals.)
    let env = TestEnv::new("flush_interval_secs = 90\ntarget_file_size_bytes = 268435456\n").await;
    let count = 150_000;
    env.expect(&["produce", "--stream", "client_tickets", "--count", &count.to_string(), "--seed", "11"], 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("--metrics-addr=127.0.0.1:{port}");
    let (mut worker, log) = env.spawn_worker_logged(&["--stream", "client_tickets", &addr]);
    let started = Instant::now();
    let consumed = format!("indutech_worker_records_in_total{{stream=\"client_tickets\"}} {count}");
    while !scrape(port).contains(&consumed) {
        assert!(started.elapsed() < Duration::from_secs(300), "the worker did not consume {count} records");
        std::thread::sleep(Duration::from_millis(500));
    }
    let signal = |child: &Child| Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    signal(&worker);
    let draining = Instant::now();
    while !std::fs::read_to_string(&log).unwrap().contains("draining") {
        assert!(draining.elapsed() < Duration::from_secs(10), "no drain after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&worker);
    let second = Instant::now();
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(second.elapsed() < Duration::from_secs(5), "the second signal did not end the worker at once");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "a second signal exits with 130 (the drain was interrupted):\n{text}");
    assert!(text.contains("second signal: exiting without draining"), "{text}");
    assert!(!text.contains("worker stopped"), "the drain must not have finished:\n{text}");

    // Whatever the interrupted drain staged is uncommitted: the next start deletes it, reads
    // everything again and (at its own SIGTERM) lands it.
    let worker = env.spawn_worker(&["--stream", "client_tickets", &addr]);
    let started = Instant::now();
    while !scrape(port).contains(&consumed) {
        assert!(started.elapsed() < Duration::from_secs(300), "the restarted worker did not consume {count} records");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(stop(worker, "TERM").success());
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(5));
    let lake = env.assert_exactly_once("client_tickets").await;
    assert_eq!(lake.rows(), count, "no malformed tickets were produced");
}

/// `produce.py` (confluent-kafka) into `topic`: `count` tickets with `codec`, in the background.
fn spawn_confluent_producer(topic: &str, codec: &str, count: u64, rate: u64, malformed_every: u64) -> Child {
    confluent_producer("127.0.0.1:9092", topic, codec, count, rate, malformed_every).spawn().unwrap()
}

/// The command of [`spawn_confluent_producer`] for the broker at `bootstrap`.
fn confluent_producer(
    bootstrap: &str,
    topic: &str,
    codec: &str,
    count: u64,
    rate: u64,
    malformed_every: u64,
) -> Command {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/produce.py");
    let mut command = Command::new(common::clients_python());
    command
        .arg(script)
        .args([bootstrap, topic, "--codec", codec, "--count", &count.to_string()])
        .args(["--rate", &rate.to_string(), "--malformed-every", &malformed_every.to_string()])
        .args(["--batch-size", "65536", "--linger-ms", "20"])
        .stdout(Stdio::piped());
    command
}

/// Waits for a background producer; asserts every record was acknowledged.
fn producer_done(child: Child, count: u64) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the producer failed");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["acked"], count, "{summary}");
}

fn wait_for_log(log: &PathBuf, needle: &str, bound: Duration) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap();
        if text.contains(needle) {
            return text;
        }
        assert!(started.elapsed() < bound, "`{needle}` not logged within {bound:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_producers_compression_lands_and_an_unreadable_batch_stops_its_partition_loudly() {
    // An ordinary producer (confluent-kafka) with each codec the broker serves, 1 in 50 malformed.
    let env = TestEnv::new("flush_interval_secs = 1\ntarget_file_size_bytes = 1048576\n").await;
    let topic = env.topic("client_tickets");
    for codec in ["gzip", "lz4", "zstd", "none"] {
        producer_done(spawn_confluent_producer(&topic, codec, 2000, 0, 50), 2000);
    }
    let worker = env.spawn_worker(&["--stream", "client_tickets"]);
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(300));
    assert!(stop(worker, "TERM").success());
    let lake = env.assert_exactly_once("client_tickets").await;
    assert_eq!(lake.rows() + lake.rejected.len(), 8000);
    assert_eq!(lake.rejected.len(), 4 * 40, "1 in 50 has the channel `fax`");

    // Snappy: the bed's broker (Tansu) fails every fetch that reaches a snappy batch (Redpanda
    // serves it). The worker cannot read it: the partitions stop, loudly, and nothing is skipped.
    let env = TestEnv::new("flush_interval_secs = 1\n").await;
    producer_done(spawn_confluent_producer(&env.topic("client_tickets"), "snappy", 500, 0, 0), 500);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("--metrics-addr=127.0.0.1:{port}");
    let (worker, log) = env.spawn_worker_logged(&["--stream", "client_tickets", &addr]);
    let text = wait_for_log(&log, "partition stopped", Duration::from_secs(120));
    assert!(text.contains("cannot be read"), "{text}");
    assert!(text.contains(&format!("topic=\"{}\"", env.topic("client_tickets"))), "names the topic: {text}");
    let metrics = scrape(port);
    assert!(metrics.contains("indutech_worker_partition_stopped{"), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("indutech_worker_partition_stopped{") && l.ends_with(" 1")));
    let status = env.expect(&["status", "--stream", "client_tickets"], 0);
    assert!(status.contains("STOPPED") && status.contains("cannot be read"), "{status}");
    // Said, not spun: the consumer error is logged at most once a minute.
    let errors = text.lines().filter(|l| l.contains("consumer error")).count();
    assert!(errors <= 2, "{errors} consumer error lines:\n{text}");
    assert!(stop(worker, "TERM").success());
    let json = env.status();
    let partitions = json[0]["partitions"].as_array().unwrap();
    assert!(partitions.iter().all(|p| p["committed"].as_i64().unwrap_or(0) == 0), "nothing was skipped: {json:#}");
}

/// What the reader of `paused_workers_...` saw that a reader must never see.
#[derive(Default)]
struct ReaderFindings {
    polls: usize,
    files: usize,
    violations: Vec<String>,
}

/// [`read_like_a_reader`] running on a stream's lake until [`LakeReader::finish`].
struct LakeReader {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<ReaderFindings>,
}

impl LakeReader {
    fn start(env: &TestEnv, stream: &str) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handle = tokio::spawn(read_like_a_reader(
            env.aws.clone(),
            indutech::model::bucket_name(&env.environment, "curated"),
            indutech::model::bucket_name(&env.environment, "rejected"),
            stream.to_owned(),
            env.topic(stream),
            stop.clone(),
        ));
        Self { stop, handle }
    }

    /// Stops the reader and returns what it saw.
    async fn finish(self) -> ReaderFindings {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.await.unwrap()
    }
}

/// Polls the lake like a reader until `stop`: every visible object of `stream`, read once (its
/// ETag must never change), each row's (partition, offset) in one object only, and never at or
/// past the committed position read after the listing.
async fn read_like_a_reader(
    env_aws: Aws,
    curated: String,
    rejected: String,
    stream: String,
    topic: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> ReaderFindings {
    let s3 = env_aws.s3();
    let mut findings = ReaderFindings::default();
    let mut etags: HashMap<String, String> = HashMap::new();
    let mut owner: HashMap<(i32, i64), String> = HashMap::new();
    let mut max_by_partition: HashMap<i32, i64> = HashMap::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        findings.polls += 1;
        for bucket in [&curated, &rejected] {
            let mut pages = s3.list_objects_v2().bucket(bucket).prefix(format!("{stream}/")).into_paginator().send();
            while let Some(page) = pages.next().await {
                for object in page.unwrap().contents() {
                    let key = object.key().unwrap().to_owned();
                    let etag = object.e_tag().unwrap_or_default().to_owned();
                    match etags.get(&key) {
                        Some(known) if *known != etag => {
                            findings.violations.push(format!("{key} changed content ({known} -> {etag})"))
                        }
                        Some(_) => continue,
                        None => {}
                    }
                    etags.insert(key.clone(), etag);
                    findings.files += 1;
                    let body = s3.get_object().bucket(bucket).key(&key).send().await.unwrap();
                    let body = body.body.collect().await.unwrap().into_bytes();
                    let mut rows = Vec::new();
                    if key.ends_with(".parquet") {
                        for batch in ParquetRecordBatchReaderBuilder::try_new(body).unwrap().build().unwrap() {
                            let batch = batch.unwrap();
                            let p = batch.column_by_name("kafka_partition").unwrap().as_primitive::<Int32Type>();
                            let o = batch.column_by_name("kafka_offset").unwrap().as_primitive::<Int64Type>();
                            rows.extend((0..batch.num_rows()).map(|i| (p.value(i), o.value(i))));
                        }
                    } else {
                        for line in std::str::from_utf8(&body).unwrap().lines() {
                            let r: serde_json::Value = serde_json::from_str(line).unwrap();
                            rows.push((r["partition"].as_i64().unwrap() as i32, r["offset"].as_i64().unwrap()));
                        }
                    }
                    for (partition, offset) in rows {
                        if let Some(other) = owner.insert((partition, offset), key.clone()) {
                            findings.violations.push(format!("{partition}/{offset} visible in {other} and {key}"));
                        }
                        let max = max_by_partition.entry(partition).or_insert(-1);
                        *max = (*max).max(offset);
                    }
                }
            }
        }
        // The committed position, read after the listing, is past everything visible.
        for (partition, max) in &max_by_partition {
            let key = format!("_indutech/commits/{topic}+{partition}.json");
            let record = s3.get_object().bucket(&curated).key(&key).send().await.unwrap();
            let record: serde_json::Value =
                serde_json::from_slice(&record.body.collect().await.unwrap().into_bytes()).unwrap();
            let committed = record["next_offset"].as_i64().unwrap();
            if *max >= committed {
                findings.violations.push(format!("{partition}/{max} visible past the committed position {committed}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    findings
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_workers_are_fenced_and_readers_see_only_committed_rows_once() {
    // Small, frequent files; a second worker takes the partitions of the frozen one.
    let env = TestEnv::new("flush_interval_secs = 1\ntarget_file_size_bytes = 1048576\n").await;
    let topic = env.topic("client_tickets");
    let count = 60_000;
    let producer = spawn_confluent_producer(&topic, "zstd", count, 1500, 100);
    let args = ["--stream", "client_tickets"];
    let (frozen, frozen_log) = env.spawn_worker_logged(&args);
    let (other, other_log) = env.spawn_worker_logged(&args);
    let reader = LakeReader::start(&env, "client_tickets");
    let signal = |name: &str| {
        assert!(Command::new("kill").args([&format!("-{name}"), &frozen.id().to_string()]).status().unwrap().success())
    };
    let mut rng = fastrand::Rng::with_seed(std::process::id().into());
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Frozen past the session timeout (6 s) at whatever it was doing, then thawed.
    for _ in 0..4 {
        signal("STOP");
        tokio::time::sleep(Duration::from_millis(8000 + rng.u64(0..6000))).await;
        signal("CONT");
        tokio::time::sleep(Duration::from_millis(3000 + rng.u64(0..3000))).await;
    }
    producer_done(producer, count);
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(600));
    let findings = reader.finish().await;
    assert!(stop(frozen, "TERM").success());
    assert!(stop(other, "TERM").success());
    assert!(findings.polls > 10 && findings.files > 10, "the reader read the lake while it was written");
    assert!(findings.violations.is_empty(), "a reader saw:\n{}", findings.violations.join("\n"));
    let lake = env.assert_exactly_once("client_tickets").await;
    assert_eq!(lake.rows() + lake.rejected.len(), count as usize);
    // The partitions really moved: take-overs bumped the epochs.
    let logs = std::fs::read_to_string(&frozen_log).unwrap() + &std::fs::read_to_string(&other_log).unwrap();
    assert!(logs.lines().any(|l| l.contains("partition taken over") && !l.contains("epoch=1 ")), "{logs}");
}

/// Commits `pending` up to offset `to` as `owned`; whether S3 took it.
async fn commit_to(
    lake: &indutech::worker::lake::Lake,
    owned: &mut indutech::worker::commit::Owned,
    to: i64,
    pending: &[indutech::worker::commit::StagedFile],
) -> bool {
    let mut record = owned.record.clone();
    record.next_offset = to;
    record.pending = pending.to_vec();
    indutech::worker::commit::commit(lake, owned, record).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_pause_point_of_the_commit_protocol_is_harmless() {
    use indutech::worker::commit::{self, FlushFile, TakeOver};
    let env = TestEnv::new("flush_interval_secs = 10\n").await;
    let lake = indutech::worker::lake::Lake::new(&env.environment, &env.aws);
    let topic = env.topic("client_tickets");
    let take = |owner: &'static str| {
        let (lake, topic) = (&lake, topic.clone());
        async move {
            match commit::take_over(lake, "client_tickets", &topic, 0, owner, 0).await.unwrap() {
                TakeOver::Owned(owned) => *owned,
                TakeOver::Contended => panic!("contended"),
            }
        }
    };
    let file = |first: i64, body: &str| FlushFile {
        bucket: lake.curated.clone(),
        target: format!("client_tickets/dt=2026-11-20/{topic}+0+{first:020}.jsonl"),
        body: body.as_bytes().to_vec(),
        content_type: "application/x-ndjson",
        records: 1,
    };
    let visible = |first: i64| {
        let (s3, bucket, key) =
            (env.aws.s3(), lake.curated.clone(), format!("client_tickets/dt=2026-11-20/{topic}+0+{first:020}.jsonl"));
        async move {
            match s3.get_object().bucket(bucket).key(key).send().await {
                Ok(o) => Some(String::from_utf8(o.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()),
                Err(_) => None,
            }
        }
    };

    // Paused after staging: a newer owner took over; the old owner's commit is refused and its
    // staged files go; nothing of it is ever visible.
    let mut a = take("a").await;
    let staged_a = commit::stage(&lake, &a, 0, vec![file(0, "a")]).await.unwrap();
    let mut b = take("b").await;
    assert_eq!(b.record.epoch, a.record.epoch + 1);
    assert!(!commit_to(&lake, &mut a, 10, &staged_a).await, "a is fenced");
    commit::discard(&lake, &staged_a).await.unwrap();
    assert_eq!(visible(0).await, None);

    // Paused between commit and publish: the next owner's roll-forward publishes the committed
    // file; the old owner, waking up, publishes the same bytes again, harmlessly.
    let staged_b = commit::stage(&lake, &b, 0, vec![file(0, "b")]).await.unwrap();
    assert!(commit_to(&lake, &mut b, 10, &staged_b).await);
    assert_eq!(visible(0).await, None, "nothing is visible before its publication");
    let c = take("c").await;
    commit::roll_forward(&lake, &c).await.unwrap();
    assert_eq!(visible(0).await.as_deref(), Some("b"), "the roll-forward published the committed file");
    commit::publish(&lake, &staged_b).await.unwrap();
    assert_eq!(visible(0).await.as_deref(), Some("b"));
    // ... and its next commit is refused.
    let staged_b2 = commit::stage(&lake, &b, 10, vec![file(10, "b2")]).await.unwrap();
    assert!(!commit_to(&lake, &mut b, 20, &staged_b2).await);
    commit::discard(&lake, &staged_b2).await.unwrap();

    // A take-over deletes every staged object of older epochs (never committed: a zombie's, or
    // an owner's that died before its commit).
    commit::stage(&lake, &a, 20, vec![file(20, "zombie")]).await.unwrap();
    let d = take("d").await;
    commit::stage(&lake, &d, 20, vec![file(20, "d")]).await.unwrap();
    commit::roll_forward(&lake, &take("e").await).await.unwrap();
    let left = lake.list_versions(&lake.curated, &commit::staging_prefix(&topic, 0)).await.unwrap();
    assert!(left.is_empty(), "older epochs' staged objects remain: {left:?}");
    assert_eq!(visible(20).await, None, "nothing uncommitted is visible");

    // A visible key never changes: a committed file whose key holds other bytes is refused.
    let mut f = take("f").await;
    let staged_f = commit::stage(&lake, &f, 10, vec![file(0, "other bytes")]).await.unwrap();
    assert!(commit_to(&lake, &mut f, 20, &staged_f).await);
    let refused = commit::publish(&lake, &staged_f).await.unwrap_err();
    assert!(format!("{refused:#}").contains("exists with other content"), "{refused:#}");
    assert_eq!(visible(0).await.as_deref(), Some("b"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_that_ends_before_the_committed_position_stops_the_partition_with_what_to_do() {
    let env = TestEnv::new("flush_interval_secs = 1\n").await;
    env.expect(&["produce", "--stream", "client_tickets", "--count", "600", "--seed", "5"], 0);
    let worker = env.spawn_worker(&["--stream", "client_tickets"]);
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(120));
    assert!(stop(worker, "TERM").success());
    // As if the topic had been deleted and created again: the lake is past the log's end.
    let curated = indutech::model::bucket_name(&env.environment, "curated");
    let key = indutech::worker::commit::record_key(&env.topic("client_tickets"), 0);
    let s3 = env.aws.s3();
    let object = s3.get_object().bucket(&curated).key(&key).send().await.unwrap();
    let mut record: serde_json::Value =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    let committed = record["next_offset"].as_i64().unwrap();
    record["next_offset"] = serde_json::json!(committed + 1000);
    s3.put_object().bucket(&curated).key(&key).body(serde_json::to_vec(&record).unwrap().into()).send().await.unwrap();

    let (worker, log) = env.spawn_worker_logged(&["--stream", "client_tickets"]);
    let text = wait_for_log(&log, "partition stopped", Duration::from_secs(60));
    assert!(text.contains(&format!("ends at offset {committed}, before the lake's committed position")), "{text}");
    assert!(text.contains("delete the commit record"), "says what to do: {text}");
    let status = env.expect(&["status", "--stream", "client_tickets"], 0);
    assert!(status.contains(&format!("STOPPED {}/0 at offset {}", env.topic("client_tickets"), committed + 1000)));
    assert!(stop(worker, "TERM").success());
}

#[tokio::test(flavor = "multi_thread")]
async fn another_group_resumes_where_the_lake_is_and_rewrites_nothing() {
    let env = TestEnv::new("flush_interval_secs = 1\n").await;
    env.expect(&["produce", "--stream", "client_tickets", "--count", "3000", "--seed", "9"], 0);
    let worker = env.spawn_worker(&["--stream", "client_tickets"]);
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(180));
    assert!(stop(worker, "TERM").success());
    // A group with no offsets at all (a new one, or one whose offsets expired or were reset).
    env.expect(&["produce", "--stream", "client_tickets", "--count", "500", "--seed", "10"], 0);
    let group = format!("{}-other", env.name);
    let (worker, log) = env.spawn_worker_logged(&["--stream", "client_tickets", "--group", &group]);
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(180));
    assert!(stop(worker, "TERM").success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("resume_from=0 "), "a partition restarted from 0:\n{text}");
    let lake = env.assert_exactly_once("client_tickets").await;
    assert_eq!(lake.rows() + lake.rejected.len(), 3500);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_finds_duplicated_and_missing_rows() {
    let env = TestEnv::new("flush_interval_secs = 1\n").await;
    env.expect(&["produce", "--stream", "client_tickets", "--count", "900", "--seed", "3"], 0);
    let worker = env.spawn_worker(&["--stream", "client_tickets"]);
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(120));
    assert!(stop(worker, "TERM").success());
    env.assert_exactly_once("client_tickets").await;
    let curated = indutech::model::bucket_name(&env.environment, "curated");
    let s3 = env.aws.s3();
    let listed = s3.list_objects_v2().bucket(&curated).prefix("client_tickets/").send().await.unwrap();
    let key = listed.contents()[0].key().unwrap().to_owned();
    // A copy of a visible file under another name: its rows are there twice.
    let copy = key.replace(".parquet", "-copy.parquet");
    s3.copy_object()
        .bucket(&curated)
        .key(&copy)
        .copy_source(format!("{curated}/{key}").replace('+', "%2B"))
        .send()
        .await
        .unwrap();
    let out = env.command(&["audit", "--stream", "client_tickets"]).output().unwrap();
    let text = exited(&["audit"], &out, 1);
    assert!(text.contains("duplicated: ") && text.contains("Audit FAILED"), "{text}");
    // The file gone: its rows are missing.
    s3.delete_object().bucket(&curated).key(&copy).send().await.unwrap();
    s3.delete_object().bucket(&curated).key(&key).send().await.unwrap();
    let out = env.command(&["audit", "--stream", "client_tickets", "--json"]).output().unwrap();
    let audit: serde_json::Value = serde_json::from_str(&exited(&["audit", "--json"], &out, 1)).unwrap();
    let missing: i64 = audit[0]["partitions"].as_array().unwrap().iter().map(|p| p["missing"].as_i64().unwrap()).sum();
    assert!(missing > 0, "{audit:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_sasl_scram_and_tls_every_client_authenticates_and_a_wrong_password_is_refused() {
    bed_is_up(&[WHOLE_BED, &[common::SASL_BROKER]].concat());
    // The principals' credentials go into Secrets Manager, where indutech reads them.
    let credentials: BTreeMap<&str, String> = ["admin", "worker"]
        .into_iter()
        .map(|p| (p, std::fs::read_to_string(common::sasl_credentials(p)).expect("up.sh wrote the SASL credentials")))
        .collect();
    let secret_prefix = format!("indutech-test/{}", uuid::Uuid::new_v4().simple());
    let dev = indutech::config::load(&format!("{}/environments/dev.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let secrets = Aws::new(&dev).await.secrets_manager();
    let mut wrong: serde_json::Value = serde_json::from_str(&credentials["admin"]).unwrap();
    wrong["password"] = serde_json::json!("not-the-password-0123456789");
    for (what, value) in [
        ("admin", credentials["admin"].clone()),
        ("worker", credentials["worker"].clone()),
        ("wrong", wrong.to_string()),
    ] {
        secrets.create_secret().name(format!("{secret_prefix}/{what}")).secret_string(value).send().await.unwrap();
    }
    let sasl = |admin: &str| {
        let (prefix, admin) = (secret_prefix.clone(), admin.to_owned());
        move |text: String| {
            text.replacen("bootstrap_servers = [\"127.0.0.1:9092\"]", &format!("bootstrap_servers = [\"{}\"]", common::SASL_BROKER), 1)
                .replacen(
                    "security = \"plaintext\"\n",
                    &format!(
                        "security = \"sasl_ssl\"\n\n[redpanda.credentials]\nadmin = \"{prefix}/{admin}\"\nworker = \"{prefix}/worker\"\n"
                    ),
                    1,
                )
        }
    };
    // Topics are created as the admin principal over SASL_SSL (the test's set-up uses indutech's
    // connection), records come from indutech's producer and from confluent-kafka with zstd.
    let env = TestEnv::new_edited("flush_interval_secs = 2\n", sasl("admin")).await;
    let topic = env.topic("client_tickets");
    let produced = env
        .command(&["produce", "--stream", "client_tickets", "--count", "3000", "--malformed", "0.01", "--seed", "5"])
        .output()
        .unwrap();
    exited(&["produce"], &produced, 0);
    let mut confluent = confluent_producer(common::SASL_BROKER, &topic, "zstd", 1000, 0, 0);
    confluent.arg("--credentials").arg(common::sasl_credentials("admin"));
    producer_done(confluent.spawn().unwrap(), 1000);

    // The worker consumes as the worker principal; `status` (admin) sees it catch up.
    let (worker, log) = env.spawn_worker_logged(&["--stream", "client_tickets"]);
    env.wait_until_caught_up(&["client_tickets"], Duration::from_secs(120));
    assert!(stop(worker, "TERM").success());
    let lake = env.assert_exactly_once("client_tickets").await;
    let malformed =
        indutech::produce::TicketGenerator::new(5, 0.01).take(3000).filter(|t| t.malformed.is_some()).count();
    assert_eq!(lake.rows(), 4000 - malformed);
    assert_eq!(lake.rejected.len(), malformed);

    // No password in what the commands printed or logged.
    let status = env.command(&["status"]).output().unwrap();
    let shown = format!(
        "{}{}{}{}",
        String::from_utf8_lossy(&produced.stdout),
        String::from_utf8_lossy(&produced.stderr),
        String::from_utf8_lossy(&status.stdout),
        std::fs::read_to_string(&log).unwrap()
    );
    for principal in ["admin", "worker"] {
        let value: serde_json::Value = serde_json::from_str(&credentials[principal]).unwrap();
        assert!(!shown.contains(value["password"].as_str().unwrap()), "the {principal} password was shown");
    }

    // The same environment with a wrong admin password: refused, the error names the secret.
    let text = std::fs::read_to_string(&env.path)
        .unwrap()
        .replace(&format!("{secret_prefix}/admin"), &format!("{secret_prefix}/wrong"));
    let wrong_path = env.path.with_file_name(format!("{}-wrong.toml", env.name));
    std::fs::write(&wrong_path, text).unwrap();
    // `status`, and `plan`, whose topic provider reads the topics as the admin principal.
    for verb in [&["status"][..], &["plan", "--component", "redpanda"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_indutech"))
            .args(verb)
            .arg("--env")
            .arg(&wrong_path)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{verb:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{secret_prefix}/wrong")) && stderr.contains("SASL authentication"),
            "{verb:?}: {stderr}"
        );
        assert!(!stderr.contains("not-the-password-0123456789"), "{verb:?}: {stderr}");
    }
}
