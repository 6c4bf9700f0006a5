//! Environment files: locate, read, decode and validate them, streams included.
//!
//! `--env dev` means `environments/dev.toml` (below the current directory); anything with a `/`
//! or ending in `.toml` is taken as a path. The environment file names a streams folder
//! (`streams_dir`, default `streams` next to it) whose `*.toml` files each define one stream;
//! `[streams.NAME]` in the environment adjusts that stream's partitions, replication and topic.
//!
//! Loading is pure: it reads files and nothing else, so an invalid environment never reaches
//! AWS. It reports every problem at once as [`Diagnostic`]s.

pub(crate) mod decode;
pub mod diagnostic;
pub mod environment;
pub mod erp;
pub mod stream;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::decode::Reader;
use crate::config::diagnostic::{Diagnostic, Source};
use crate::config::environment::Environment;

/// Why an environment could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// A file could not be read.
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The files were read but are invalid; every problem found, in file order.
    Invalid(Vec<Diagnostic>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, .. } => write!(f, "cannot read {}", path.display()),
            LoadError::Invalid(diagnostics) => {
                for diagnostic in diagnostics {
                    writeln!(f, "{diagnostic}")?;
                }
                let n = diagnostics.len();
                write!(f, "{n} problem{} found", if n == 1 { "" } else { "s" })
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            LoadError::Invalid(_) => None,
        }
    }
}

/// The file `--env VALUE` refers to: a name (`dev` -> `environments/dev.toml`) or a path.
pub fn resolve(env: &str) -> PathBuf {
    if env.contains('/') || env.ends_with(".toml") {
        PathBuf::from(env)
    } else {
        Path::new("environments").join(format!("{env}.toml"))
    }
}

/// Loads and validates the environment `env` (a name or a path, see [`resolve`]).
///
/// Errors: [`LoadError::Read`] if the environment file or its streams folder cannot be read;
/// [`LoadError::Invalid`] with every problem (file, line, column, field) otherwise.
pub fn load(env: &str) -> Result<Environment, LoadError> {
    let path = resolve(env);
    let text = read(&path)?;
    let source = Source::new(&path, text);
    let mut reader = Reader::new(&source);
    let decoded = reader.parse().map(|root| environment::decode_environment(&mut reader, root));
    let mut diagnostics = reader.into_diagnostics();
    let Some(file) = decoded else {
        return Err(LoadError::Invalid(diagnostics));
    };

    // Streams: one file each in the streams folder, sorted by file name.
    let streams_dir = path.parent().unwrap_or(Path::new(".")).join(&file.streams_dir);
    let mut stream_files: Vec<PathBuf> = std::fs::read_dir(&streams_dir)
        .map_err(|source| LoadError::Read { path: streams_dir.clone(), source })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    stream_files.sort();
    let mut streams = Vec::new();
    let mut stream_texts = Vec::new();
    for stream_path in stream_files {
        let text = read(&stream_path)?;
        let file_name = stream_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        stream_texts.push((file_name, text.clone()));
        let stream_source = Source::new(&stream_path, text);
        let mut reader = Reader::new(&stream_source);
        if let Some(stream) = reader.parse().and_then(|root| stream::decode_stream(&mut reader, root)) {
            if streams.iter().any(|s: &stream::Stream| s.name == stream.name) {
                let message =
                    format!("stream `{}` is already defined by another file in {}", stream.name, streams_dir.display());
                diagnostics.push(stream_source.diagnostic(0, "name", message));
            }
            streams.push(stream);
        }
        diagnostics.extend(reader.into_diagnostics());
    }
    if streams.is_empty() && diagnostics.is_empty() {
        diagnostics.push(source.diagnostic(
            0,
            "streams_dir",
            format!("no stream files (*.toml) in {}", streams_dir.display()),
        ));
    }

    // Per-environment overrides, then checks that need both the environment and the streams.
    for stream_override in &file.stream_overrides {
        match streams.iter_mut().find(|s| s.name == stream_override.name.value) {
            Some(stream) => {
                stream.partitions = stream_override.partitions.unwrap_or(stream.partitions);
                stream.replication = stream_override.replication.unwrap_or(stream.replication);
                stream.granularity = stream_override.granularity.unwrap_or(stream.granularity);
                stream.ingress_mb_per_sec = stream_override.ingress_mb_per_sec.or(stream.ingress_mb_per_sec);
                if let Some(topic) = &stream_override.topic {
                    stream.topic = topic.clone();
                }
            }
            None => diagnostics.push(source.diagnostic(
                stream_override.name.span.start,
                &format!("streams.{}", stream_override.name.value),
                format!("no stream `{}` in {}", stream_override.name.value, streams_dir.display()),
            )),
        }
    }
    let Some(mut environment) = file.environment else {
        return Err(LoadError::Invalid(sorted(diagnostics, &path)));
    };
    if environment.redpanda.bootstrap_servers.is_empty() {
        for stream in &streams {
            if u32::from(stream.replication) > environment.redpanda.broker_count {
                diagnostics.push(source.diagnostic(
                    0,
                    &format!("streams.{}.replication", stream.name),
                    format!(
                        "replication {} exceeds redpanda.broker_count {}",
                        stream.replication, environment.redpanda.broker_count
                    ),
                ));
            }
        }
    }
    // ERP tables share the Glue database with the streams.
    for table in &file.erp_tables {
        if streams.iter().any(|s| s.name == table.value) {
            diagnostics.push(source.diagnostic(
                table.span.start,
                &format!("erp.tables.{}", table.value),
                format!(
                    "`{}` is also a stream's name: the ERP tables and the streams share one Glue database; rename \
                     the ERP table",
                    table.value
                ),
            ));
        }
    }
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    environment.streams = streams;
    if environment.redpanda.throughput.is_none() {
        for stream_override in file.stream_overrides.iter().filter(|o| o.ingress_mb_per_sec.is_some()) {
            diagnostics.push(source.diagnostic(
                stream_override.name.span.start,
                &format!("streams.{}.ingress_mb_per_sec", stream_override.name.value),
                "a stream's part of the ingestion target needs the target: declare [redpanda.throughput]",
            ));
        }
    }
    // The brokers against the declared ingestion target, with one of them down.
    if let (Some(inputs), Some(span)) = (environment.sizing_inputs(), file.throughput_span) {
        for problem in crate::model::sizing::size(&inputs).problems {
            diagnostics.push(source.diagnostic(span.start, &problem.field, problem.message));
        }
    }
    if !diagnostics.is_empty() {
        return Err(LoadError::Invalid(sorted(diagnostics, &path)));
    }
    environment.file = std::path::absolute(&path).unwrap_or(path);
    environment.sources = environment::Sources {
        environment: source.text.clone(),
        streams_dir: file.streams_dir.clone(),
        streams: stream_texts,
    };
    Ok(environment)
}

/// The environment file's problems first, then each stream file's, each in position order.
fn sorted(mut diagnostics: Vec<Diagnostic>, environment_file: &Path) -> Vec<Diagnostic> {
    diagnostics.sort_by(|a, b| {
        (a.file != environment_file, &a.file, a.line, a.column).cmp(&(
            b.file != environment_file,
            &b.file,
            b.line,
            b.column,
        ))
    });
    diagnostics
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })
}

/// One of the environments shipped in `environments/` (tests only).
#[cfg(test)]
pub(crate) fn shipped(name: &str) -> Environment {
    let path = format!("{}/environments/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    load(&path).unwrap_or_else(|e| panic!("environments/{name}.toml must load: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::stream::FieldType;

    fn dev() -> Environment {
        shipped("dev")
    }

    #[test]
    fn resolve_names_and_paths() {
        assert_eq!(resolve("dev"), Path::new("environments/dev.toml"));
        assert_eq!(resolve("./x/dev.toml"), Path::new("./x/dev.toml"));
        assert_eq!(resolve("other.toml"), Path::new("other.toml"));
    }

    #[test]
    fn environment_overrides_apply_to_shared_streams() {
        let environment = dev();
        let names: Vec<&str> = environment.streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["client_tickets", "incident_events", "sensor_readings"]);
        // Shared definitions say 6 partitions and replication 3; dev overrides both.
        assert!(environment.streams.iter().all(|s| s.partitions == 3 && s.replication == 1));
        assert_eq!(environment.endpoints.for_service("glue"), Some("http://127.0.0.1:5000"));
        assert_eq!(environment.endpoints.for_service("s3"), Some("http://127.0.0.1:4566"));
    }

    #[test]
    fn columns_are_fields_then_derived_columns_without_the_partition_key() {
        let environment = dev();
        let tickets = environment.streams.iter().find(|s| s.name == "client_tickets").unwrap();
        let names: Vec<String> = tickets.columns().into_iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            [
                "ticket_id",
                "client_id",
                "created_at",
                "channel",
                "priority",
                "subject",
                "body",
                "customer_tier",
                "category",
                "ingested_at",
                "kafka_partition",
                "kafka_offset"
            ]
        );
        let readings = environment.streams.iter().find(|s| s.name == "sensor_readings").unwrap();
        let columns = readings.columns();
        assert_eq!(columns[5], ("pm2_5".to_owned(), FieldType::Double));
        assert_eq!(readings.fields[5].source, "PM2.5");
        let tail: Vec<&(String, FieldType)> = columns.iter().rev().take(4).collect();
        assert_eq!(
            tail,
            [
                &("kafka_offset".to_owned(), FieldType::Bigint),
                &("kafka_partition".to_owned(), FieldType::Int),
                &("ingested_at".to_owned(), FieldType::Timestamp),
                &("observed_at".to_owned(), FieldType::Timestamp)
            ]
        );
        assert!(environment.streams.iter().all(|s| s.columns().iter().all(|c| c.0 != s.partition_key)));
        let incidents = environment.streams.iter().find(|s| s.name == "incident_events").unwrap();
        assert_eq!(incidents.fields.len(), 36);
        assert_eq!(incidents.fields[9].format.as_deref(), Some("%d/%m/%Y %H:%M"));
    }
}
