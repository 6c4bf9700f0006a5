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
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
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
        bed_is_up(WHOLE_BED);
        let (_, path, name) = write_env("w", true, |mut text| {
            let worker = text.find("[worker]").unwrap();
            let end = text[worker..].find("\n\n").map_or(text.len(), |e| worker + e);
            text.replace_range(worker..end, &format!("[worker]\nruntime = \"local\"\n{worker_settings}"));
            text
        });
        let environment = indutech::config::load(path.to_str().unwrap()).expect("the test environment is valid");
        let aws = Aws::new(&environment).await;
        let env = TestEnv { path, name, environment, aws };
        env.expect(&["apply", "--component", "lake", "--component", "catalog", "--auto-approve"], 0);
        env.create_topics().await;
        env
    }

    fn topic(&self, stream: &str) -> String {
        format!("{}-{stream}", self.name)
    }

    async fn create_topics(&self) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<_> =
            rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:9092").create().unwrap();
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
                        let kv = builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
                        let value = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone()).unwrap();
                        let source = value("indutech.source");
                        let partition: i32 = source.rsplit('/').next().unwrap().parse().unwrap();
                        let offsets = indutech::worker::codec::parse_ranges(&value("indutech.offsets")).unwrap();
                        let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
                        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), offsets.len(), "{key}");
                        lake.offsets.entry(partition).or_default().extend(offsets);
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

    /// Every offset of every partition appears exactly once among the visible objects.
    async fn assert_exactly_once(&self, stream: &str) -> Lake {
        let lake = self.read_lake(stream).await;
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

    // Sensor readings: every row of the 12 files; the reading's hour is Beijing time.
    let lake = env.assert_exactly_once("sensor_readings").await;
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
    let glue = env.aws.glue();
    let database = indutech::model::glue_database_name(&env.environment);
    let mut registered = BTreeSet::new();
    let mut pages =
        glue.get_partitions().database_name(&database).table_name("sensor_readings").into_paginator().send();
    while let Some(page) = pages.next().await {
        for p in page.unwrap().partitions() {
            registered.insert(p.values()[0].clone());
        }
    }
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
async fn sigkilled_workers_and_rebalances_still_land_every_offset_exactly_once() {
    let env = TestEnv::new("flush_interval_secs = 1\ntarget_file_size_bytes = 1048576\n").await;
    let producer = env
        .command(&["produce", "--stream", "client_tickets", "--count", "30000", "--rate", "500", "--malformed", "0.01"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let args = ["--stream", "client_tickets"];
    let mut logs = Vec::new();
    let mut rng = fastrand::Rng::with_seed(std::process::id().into());
    let committed = || -> i64 {
        let status = env.status();
        let stream = status.as_array().unwrap().iter().find(|s| s["stream"] == "client_tickets").unwrap().clone();
        stream["partitions"].as_array().unwrap().iter().map(|p| p["committed"].as_i64().unwrap_or(0)).sum()
    };
    for _ in 0..4 {
        // Kill the worker at a random moment once it is ingesting: after it has committed
        // something of its own (so the next one resumes from a commit), within a flush or two.
        let before = committed();
        let (child, log) = env.spawn_worker_logged(&args);
        logs.push(log.clone());
        let started = Instant::now();
        while !std::fs::read_to_string(&log).unwrap().contains("partitions assigned by the group") {
            assert!(started.elapsed() < Duration::from_secs(180), "the worker got no partition within 180 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        while committed() <= before {
            assert!(started.elapsed() < Duration::from_secs(240), "the worker committed nothing within 240 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(rng.u64(0..2500)));
        assert!(!stop(child, "KILL").success());
        // Restart after the group's session timeout (6 s), as a supervisor would: a member that
        // joins while Tansu still counts the dead one sometimes got no partition for minutes.
        std::thread::sleep(Duration::from_secs(7));
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
        text.lines().any(|l| l.contains("partition resumed") && !l.contains("resume_from=0 ")),
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
    lake.put(&lake.curated, "client_tickets/dt=2026-01-01/big.parquet", body.clone(), "application/octet-stream")
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
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_exits_at_once_and_the_next_start_still_lands_everything_once() {
    // One flush for the whole backlog, at the signal: big enough that the drain takes a while.
    let env = TestEnv::new("flush_interval_secs = 3600\ntarget_file_size_bytes = 268435456\n").await;
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

    // Whatever the interrupted drain uploaded is uncommitted: the next start removes it, reads
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
