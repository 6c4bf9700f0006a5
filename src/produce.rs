//! What feeds the topics: the proof of concept's ticket generator (deterministic with a seed,
//! optionally mixing in malformed records) and the replay of real CSV datasets (one JSON object
//! per row, keys = CSV header names, values = cell texts unchanged, as shared/DESIGN.md's
//! contract says), plus [`send`], which publishes records to a topic with bounded in-flight
//! messages and an optional rate.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{TimeZone as _, Utc};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::ser::{SerializeMap, Serializer};

/// One record to publish: its key (keeps per-key order) and JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Message key, such as a client id, an incident number or a station.
    pub key: Option<String>,
    /// The payload, normally a JSON object.
    pub payload: Vec<u8>,
    /// For generated records: why this one is malformed on purpose (None: valid).
    pub malformed: Option<&'static str>,
}

const CHANNELS: &[&str] = &["email", "phone", "chat", "web"];
const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];
const TIERS: &[&str] = &["free", "pro", "enterprise"];
const SUBJECTS: &[&str] = &[
    "Invoice {n} was charged twice",
    "Refund for order {n} not received",
    "Payment declined on renewal",
    "Cannot login since this morning",
    "Password reset link expired",
    "Please enable 2FA for our team",
    "Gateway crash after firmware {n}",
    "Sensor {n} reports a timeout",
    "Dashboard error when exporting",
    "Shipment {n} delayed",
    "Tracking number for parcel {n} unknown",
    "Delivery went to the wrong site",
    "Question about the roadmap",
    "Feedback on the new portal",
    "Need a quote for {n} more licences",
];
const BODIES: &[&str] = &[
    "We noticed this on line {n} of the plant.",
    "Could you look into it today? Our shift lead is waiting.",
    "This started after the maintenance window.",
    "Attached is a screenshot; the id is {n}.",
    "The operator says it happened three times already.",
    "No urgency, but please confirm you received this.",
    "Our controller in hall {n} shows the same message.",
];
/// Kinds of malformed records the generator mixes in, with what the worker must say.
pub const MALFORMED_KINDS: &[&str] =
    &["not JSON", "missing client_id", "priority is a number", "unparsable created_at", "channel not allowed"];

/// The proof of concept's support-ticket generator: the same seed gives the same records.
#[derive(Debug)]
pub struct TicketGenerator {
    rng: fastrand::Rng,
    malformed_share: f64,
    start: i64,
    index: u64,
}

impl TicketGenerator {
    /// A generator seeded with `seed`; `malformed_share` (0.0-1.0) of the records are malformed
    /// on purpose (one of [`MALFORMED_KINDS`]). Tickets are created from 2026-11-01T00:00:00Z
    /// on, about 20 seconds apart.
    pub fn new(seed: u64, malformed_share: f64) -> Self {
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().map_or(0, |t| t.timestamp());
        Self { rng: fastrand::Rng::with_seed(seed), malformed_share: malformed_share.clamp(0.0, 1.0), start, index: 0 }
    }

    /// The next ticket.
    pub fn next_record(&mut self) -> Record {
        let rng = &mut self.rng;
        self.index += 1;
        let mut id = [0u8; 16];
        rng.fill(&mut id);
        let ticket_id = uuid::Builder::from_random_bytes(id).into_uuid();
        let client_id = format!("C-{:05}", rng.u32(0..2000));
        let created = self.start + (self.index as i64) * 20 + i64::from(rng.u8(0..20));
        let created_at = Utc
            .timestamp_opt(created, 0)
            .single()
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let n = rng.u32(100..99_999).to_string();
        let subject = SUBJECTS[rng.usize(..SUBJECTS.len())].replace("{n}", &n);
        let body = (!rng.u8(0..10).eq(&0)).then(|| BODIES[rng.usize(..BODIES.len())].replace("{n}", &n));
        let tier = (rng.u8(0..5) != 0).then(|| TIERS[rng.usize(..TIERS.len())]);
        let mut ticket = serde_json::json!({
            "ticket_id": ticket_id.to_string(),
            "client_id": client_id,
            "created_at": created_at,
            "channel": CHANNELS[rng.usize(..CHANNELS.len())],
            "priority": PRIORITIES[rng.usize(..PRIORITIES.len())],
            "subject": subject,
            "body": body,
            "customer_tier": tier,
        });
        let malformed = (rng.f64() < self.malformed_share).then(|| MALFORMED_KINDS[rng.usize(..MALFORMED_KINDS.len())]);
        let payload = match malformed {
            Some("not JSON") => {
                let text = ticket.to_string();
                text.as_bytes()[..text.len() / 2].to_vec()
            }
            Some(kind) => {
                match kind {
                    "missing client_id" => {
                        ticket.as_object_mut().map(|o| o.remove("client_id"));
                    }
                    "priority is a number" => ticket["priority"] = serde_json::json!(3),
                    "unparsable created_at" => ticket["created_at"] = serde_json::json!("31/11/2026 25:61"),
                    _ => ticket["channel"] = serde_json::json!("fax"),
                }
                ticket.to_string().into_bytes()
            }
            None => ticket.to_string().into_bytes(),
        };
        Record { key: Some(client_id), payload, malformed }
    }
}

impl Iterator for TicketGenerator {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        Some(self.next_record())
    }
}

/// The CSV files of `path`: the file itself, or every `*.csv` in the folder, sorted by name.
///
/// Errors: the path does not exist or holds no CSV file.
pub fn csv_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no .csv file", path.display());
    }
    Ok(files)
}

/// Replays CSV rows as records: one JSON object per row, keys = header names, values = the
/// cell texts as JSON strings; the key is the `key_column` cell.
pub struct CsvReplay {
    files: Vec<PathBuf>,
    current: Option<(PathBuf, csv::StringRecordsIntoIter<File>, csv::StringRecord)>,
    key_column: Option<String>,
    key_index: Option<usize>,
    /// Rows read so far, over all files.
    pub rows: u64,
}

impl CsvReplay {
    /// Opens the replay of `files` (see [`csv_files`]), keyed by `key_column` if given.
    pub fn new(files: Vec<PathBuf>, key_column: Option<String>) -> Self {
        Self { files: files.into_iter().rev().collect(), current: None, key_column, key_index: None, rows: 0 }
    }

    /// The next record, None at the end of the last file.
    ///
    /// Errors: a file cannot be opened, a row is not valid CSV (file and line named), or the
    /// key column is missing from a header.
    pub fn next_record(&mut self) -> anyhow::Result<Option<Record>> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.pop() else { return Ok(None) };
                let mut reader = csv::ReaderBuilder::new()
                    .from_path(&path)
                    .with_context(|| format!("{}: cannot open", path.display()))?;
                let header = reader.headers().with_context(|| format!("{}: no CSV header", path.display()))?.clone();
                self.key_index = match &self.key_column {
                    Some(column) => Some(header.iter().position(|h| h == column).with_context(|| {
                        format!("{}: the header has no `{column}` column (the stream's message key)", path.display())
                    })?),
                    None => None,
                };
                self.current = Some((path, reader.into_records(), header));
            }
            let Some((path, rows, header)) = &mut self.current else { continue };
            match rows.next() {
                None => self.current = None,
                Some(Err(error)) => bail!("{}: {error}", path.display()),
                Some(Ok(row)) => {
                    self.rows += 1;
                    let mut payload = Vec::with_capacity(row.as_slice().len() * 2 + header.as_slice().len() * 2);
                    let mut serializer = serde_json::Serializer::new(&mut payload);
                    let mut map = serializer.serialize_map(Some(header.len()))?;
                    for (name, value) in header.iter().zip(row.iter()) {
                        map.serialize_entry(name, value)?;
                    }
                    map.end()?;
                    let key = self.key_index.and_then(|i| row.get(i)).map(str::to_owned);
                    return Ok(Some(Record { key, payload, malformed: None }));
                }
            }
        }
    }
}

/// Delivery counts of a [`send`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    /// Records acknowledged by the broker.
    pub records: u64,
    /// Payload bytes acknowledged.
    pub bytes: u64,
}

/// A producer over `connection` (acks=all, lz4 batches; Tansu cannot serve snappy).
///
/// Errors: the client cannot be created (bad configuration).
pub fn producer(connection: &crate::kafka::Connection) -> anyhow::Result<FutureProducer> {
    connection
        .config()
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("message.timeout.ms", "60000")
        .create()
        .context("creating the Kafka producer")
}

/// Publishes `records` to `topic`, at most `rate` records per second when given, keeping at
/// most 10 000 messages in flight; `progress` is called with the running counts.
///
/// Errors: the producer cannot be created, or a delivery failed (the error names the topic and
/// how many records were acknowledged before it).
pub async fn send(
    connection: &crate::kafka::Connection,
    topic: &str,
    records: impl Iterator<Item = anyhow::Result<Record>>,
    rate: Option<f64>,
    mut progress: impl FnMut(Sent),
) -> anyhow::Result<Sent> {
    use futures_util::StreamExt as _;
    let producer = producer(connection)?;
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut sent = Sent::default();
    let started = Instant::now();
    let mut queued = 0u64;
    let on_delivery =
        |result: Result<(usize, rdkafka::producer::future_producer::Delivery), (rdkafka::error::KafkaError, usize)>,
         sent: &mut Sent|
         -> anyhow::Result<()> {
            match result {
                Ok((bytes, _)) => {
                    sent.records += 1;
                    sent.bytes += bytes as u64;
                    Ok(())
                }
                Err((error, _)) => {
                    bail!("delivering to topic {topic} failed after {} acknowledged records: {error}", sent.records)
                }
            }
        };
    for record in records {
        let record = record?;
        if let Some(rate) = rate.filter(|r| *r > 0.0) {
            let due = started + Duration::from_secs_f64(queued as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        while in_flight.len() >= 10_000 {
            if let Some(result) = in_flight.next().await {
                on_delivery(result, &mut sent)?;
                progress(sent);
            }
        }
        let producer = &producer;
        let bytes = record.payload.len();
        in_flight.push(async move {
            let mut message = FutureRecord::to(topic).payload(&record.payload);
            if let Some(key) = &record.key {
                message = message.key(key);
            }
            producer
                .send(message, Duration::from_secs(60))
                .await
                .map(|delivery| (bytes, delivery))
                .map_err(|(error, _)| (error, bytes))
        });
        queued += 1;
        if queued.is_multiple_of(1000) {
            progress(sent);
        }
    }
    while let Some(result) = in_flight.next().await {
        on_delivery(result, &mut sent)?;
        if sent.records.is_multiple_of(1000) {
            progress(sent);
        }
    }
    progress(sent);
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_tickets_and_the_share_of_malformed_holds() {
        let a: Vec<Record> = TicketGenerator::new(7, 0.01).take(20_000).collect();
        let b: Vec<Record> = TicketGenerator::new(7, 0.01).take(20_000).collect();
        assert_eq!(a, b);
        let c: Vec<Record> = TicketGenerator::new(8, 0.01).take(10).collect();
        assert_ne!(a[..10], c[..]);
        let malformed = a.iter().filter(|r| r.malformed.is_some()).count();
        assert!((120..=280).contains(&malformed), "about 1% of 20000, got {malformed}");
        for kind in MALFORMED_KINDS {
            assert!(a.iter().any(|r| r.malformed == Some(kind)), "{kind} never generated");
        }
    }

    #[test]
    fn csv_rows_become_objects_of_cell_texts() {
        let dir = std::env::temp_dir().join(format!("indutech-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.csv"), "No,PM2.5,station\n2,NA,\"Dongsi\"\n").unwrap();
        std::fs::write(dir.join("a.csv"), "No,PM2.5,station\n1,4,Aotizhongxin\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let mut replay = CsvReplay::new(csv_files(&dir).unwrap(), Some("station".into()));
        let first = replay.next_record().unwrap().unwrap();
        assert_eq!(String::from_utf8(first.payload).unwrap(), r#"{"No":"1","PM2.5":"4","station":"Aotizhongxin"}"#);
        assert_eq!(first.key.as_deref(), Some("Aotizhongxin"));
        let second = replay.next_record().unwrap().unwrap();
        assert_eq!(String::from_utf8(second.payload).unwrap(), r#"{"No":"2","PM2.5":"NA","station":"Dongsi"}"#);
        assert!(replay.next_record().unwrap().is_none());
        let mut wrong_key = CsvReplay::new(csv_files(&dir).unwrap(), Some("number".into()));
        assert!(wrong_key.next_record().unwrap_err().to_string().contains("no `number` column"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
