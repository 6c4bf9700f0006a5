//! `indutech load`: a CSV export of an ERP table written into the raw zone as AWS DMS writes a
//! full load, for where nothing runs DMS's data path (the test bed) or to seed a table by hand.
//!
//! The layout is DMS's S3 target's with the environment's settings: Parquet files
//! `erp/<schema>/<table>/LOAD00000001.parquet`, `LOAD00000002.parquet`... (DMS counts them in
//! hexadecimal), each with the source operation `op` (`I` for every full-load row) first, then
//! the declared columns with their Glue types (the same Arrow and Parquet types the worker
//! writes, which `worker::sql_types` checks Spectrum and Athena read). A new load replaces the
//! table's full-load files: the files it writes overwrite the earlier ones' keys (the bucket
//! keeps their versions) and an earlier load's further `LOAD*` files are deleted (a delete
//! marker each, also recoverable).
//!
//! The whole CSV is checked before anything is written: a bad cell fails the load, naming the
//! file, line, column and value, and nothing reaches the lake.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};

use crate::config::erp::{ErpTable, OP_COLUMN};
use crate::config::stream::FieldType;

/// Rows per Parquet file (DMS splits a full load into files too).
pub const ROWS_PER_FILE: usize = 1_000_000;

/// One file of a load: its key in the raw bucket and its bytes.
#[derive(Debug)]
pub struct File {
    /// `erp/<schema>/<table>/LOAD0000000N.parquet`.
    pub key: String,
    /// Parquet, zstd-compressed as the worker's files.
    pub bytes: Vec<u8>,
    /// Rows in it.
    pub rows: usize,
}

/// DMS's full-load file name for the `index`-th file (from 1): `LOAD` and 8 hex digits.
pub fn load_file_name(index: usize) -> String {
    format!("LOAD{index:08X}.parquet")
}

/// One column being built.
enum Builder {
    Str(StringBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
    Date(Date32Builder),
}

impl Builder {
    fn new(ty: FieldType) -> Self {
        match ty {
            FieldType::String => Builder::Str(StringBuilder::new()),
            FieldType::Int => Builder::I32(Int32Builder::new()),
            FieldType::Bigint => Builder::I64(Int64Builder::new()),
            FieldType::Double => Builder::F64(Float64Builder::new()),
            FieldType::Boolean => Builder::Bool(BooleanBuilder::new()),
            FieldType::Timestamp => Builder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            FieldType::Date => Builder::Date(Date32Builder::new()),
        }
    }

    /// Appends `cell` (empty: null), or says what is wrong with it.
    fn push(&mut self, cell: &str) -> Result<(), String> {
        let cell = cell.trim();
        if cell.is_empty() {
            match self {
                Builder::Str(b) => b.append_null(),
                Builder::I32(b) => b.append_null(),
                Builder::I64(b) => b.append_null(),
                Builder::F64(b) => b.append_null(),
                Builder::Bool(b) => b.append_null(),
                Builder::Time(b) => b.append_null(),
                Builder::Date(b) => b.append_null(),
            }
            return Ok(());
        }
        match self {
            Builder::Str(b) => b.append_value(cell),
            Builder::I32(b) => b.append_value(cell.parse().map_err(|_| "not an int (32-bit integer)")?),
            Builder::I64(b) => b.append_value(cell.parse().map_err(|_| "not a bigint (64-bit integer)")?),
            Builder::F64(b) => {
                let value: f64 = cell.parse().map_err(|_| "not a double")?;
                if !value.is_finite() {
                    return Err("not a finite double".into());
                }
                b.append_value(value)
            }
            Builder::Bool(b) => b.append_value(match cell.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err("not a boolean (true, false, 1 or 0)".into()),
            }),
            Builder::Time(b) => b.append_value(timestamp_micros(cell)?),
            Builder::Date(b) => {
                let date =
                    chrono::NaiveDate::parse_from_str(cell, "%Y-%m-%d").map_err(|_| "not a date (YYYY-MM-DD)")?;
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date");
                let days = i32::try_from((date - epoch).num_days()).map_err(|_| "a date out of range")?;
                b.append_value(days)
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
        }
    }
}

/// Microseconds since the epoch of `text`: RFC 3339 (`2013-02-28T16:00:00Z`, any offset) or
/// SQL Server's export form without an offset, taken as UTC (`2013-02-28 16:00:00[.ffffff]`,
/// a `T` instead of the space accepted).
fn timestamp_micros(text: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_micros());
    }
    for pattern in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, pattern) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    Err("not a timestamp (RFC 3339, or YYYY-MM-DD HH:MM:SS[.ffffff] in UTC)".into())
}

/// The Arrow schema of `table`'s files: `op` (string, not null), then the declared columns
/// (nullable), typed as the worker types them.
pub fn schema(table: &ErpTable) -> Schema {
    let mut fields = vec![Field::new(OP_COLUMN, crate::worker::codec::arrow_type(FieldType::String), false)];
    fields.extend(
        table.columns.iter().map(|c| Field::new(&c.name, crate::worker::codec::arrow_type(c.column_type), true)),
    );
    Schema::new(fields)
}

/// Parses the CSV export `text` (read from `path`, named in errors) of `table` and encodes it
/// as the full-load files DMS would write. The header names each declared column once, by its
/// source name or its lake name, in any order; other columns are refused (the Glue table would
/// not show them). Pure.
///
/// Errors: a header that misses or repeats a column or has an undeclared one, a row with
/// another number of cells, a cell that is not of its column's type (file, line, column,
/// value), an empty file; nothing is encoded then.
pub fn encode(table: &ErpTable, path: &Path, text: &str) -> anyhow::Result<Vec<File>> {
    let shown = path.display();
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header = reader.headers().with_context(|| format!("{shown}: cannot read the CSV header"))?.clone();
    let mut positions = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        let found: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(_, h)| h.trim() == column.source || h.trim() == column.name)
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [one] => positions.push(*one),
            [] => bail!(
                "{shown}:1: no column `{}` (or `{}`) in the header; erp.tables.{} declares it",
                column.source,
                column.name,
                table.name
            ),
            _ => bail!("{shown}:1: the header names column `{}` more than once", column.name),
        }
    }
    for (i, h) in header.iter().enumerate() {
        if !positions.contains(&i) {
            bail!(
                "{shown}:1: column `{}` is not declared in erp.tables.{} (declare it, or leave it out of the export)",
                h.trim(),
                table.name
            );
        }
    }
    let schema = Arc::new(schema(table));
    let mut files = Vec::new();
    let mut builders: Vec<Builder> = table.columns.iter().map(|c| Builder::new(c.column_type)).collect();
    let mut rows = 0usize;
    let flush = |builders: &mut Vec<Builder>, rows: usize, files: &mut Vec<File>| -> anyhow::Result<()> {
        let mut op = StringBuilder::new();
        for _ in 0..rows {
            op.append_value("I");
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(op.finish())];
        columns.extend(builders.iter_mut().map(Builder::finish));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let mut bytes = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(
            &mut bytes,
            schema.clone(),
            Some(crate::worker::codec::writer_properties()),
        )?;
        writer.write(&batch)?;
        writer.close()?;
        files.push(File { key: format!("{}{}", table.prefix(), load_file_name(files.len() + 1)), bytes, rows });
        Ok(())
    };
    for record in reader.records() {
        let record = record.with_context(|| format!("{shown}: not valid CSV"))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            bail!("{shown}:{line}: {} cells, the header has {}", record.len(), header.len());
        }
        for ((column, builder), position) in table.columns.iter().zip(builders.iter_mut()).zip(&positions) {
            let cell = &record[*position];
            builder.push(cell).map_err(|why| {
                anyhow::anyhow!(
                    "{shown}:{line}: column `{}` ({}): `{cell}` is {why}",
                    column.name,
                    column.column_type.as_str()
                )
            })?;
        }
        rows += 1;
        if rows == ROWS_PER_FILE {
            flush(&mut builders, rows, &mut files)?;
            rows = 0;
        }
    }
    if rows > 0 || files.is_empty() {
        if rows == 0 {
            bail!("{shown}: no rows after the header");
        }
        flush(&mut builders, rows, &mut files)?;
    }
    Ok(files)
}

/// What a load did.
#[derive(Debug)]
pub struct Loaded {
    /// `s3://bucket/key` of each file written, with its rows.
    pub files: Vec<(String, usize)>,
    /// Keys of an earlier load's further files, deleted.
    pub removed: Vec<String>,
}

/// Encodes `path` (see [`encode`]) and writes it into `environment`'s raw bucket.
///
/// Errors: the table is not declared (the declared ones are listed), the file cannot be read
/// or is invalid (nothing written), or S3 refused a write.
pub async fn run(
    environment: &crate::config::environment::Environment,
    aws: &crate::aws::Aws,
    table: &str,
    path: &Path,
) -> anyhow::Result<Loaded> {
    let erp = environment.erp.as_ref().with_context(|| {
        format!("environment {} declares no [erp]: there is no ERP table to load", environment.name)
    })?;
    let name = table.strip_prefix("erp.").unwrap_or(table);
    let Some(table) = erp.tables.iter().find(|t| t.name == name) else {
        let names: Vec<String> = erp.tables.iter().map(|t| format!("erp.{}", t.name)).collect();
        bail!("no ERP table `{name}` in environment {}; declared: {}", environment.name, names.join(", "));
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let files = encode(table, path, &text)?;
    let lake = crate::worker::lake::Lake::new(environment, aws);
    let bucket = crate::model::bucket_name(environment, "raw");
    let mut written = Vec::new();
    for file in &files {
        let digest = crate::digest::sha256_hex(&file.bytes);
        lake.put(&bucket, &file.key, file.bytes.clone(), "application/vnd.apache.parquet", &digest)
            .await
            .with_context(|| format!("writing s3://{bucket}/{}", file.key))?;
        written.push((format!("s3://{bucket}/{}", file.key), file.rows));
    }
    let keep: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
    let stale: Vec<String> = lake
        .list(&bucket, &table.prefix())
        .await?
        .into_iter()
        .filter(|k| k.rsplit('/').next().is_some_and(|f| f.starts_with("LOAD")) && !keep.contains(&k.as_str()))
        .collect();
    if !stale.is_empty() {
        // No version id: a delete marker each, the data itself stays recoverable.
        let markers: Vec<(String, Option<String>)> = stale.iter().map(|k| (k.clone(), None)).collect();
        lake.delete_versions(&bucket, &markers).await?;
    }
    Ok(Loaded { files: written, removed: stale })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::erp::ErpColumn;

    fn table() -> ErpTable {
        ErpTable {
            name: "stations".into(),
            schema: "dbo".into(),
            source_table: "MonitoringStations".into(),
            columns: vec![
                ErpColumn { name: "station".into(), source: "StationName".into(), column_type: FieldType::String },
                ErpColumn {
                    name: "first_reading_at".into(),
                    source: "FirstReadingAt".into(),
                    column_type: FieldType::Timestamp,
                },
                ErpColumn { name: "hourly_rows".into(), source: "HourlyRows".into(), column_type: FieldType::Bigint },
                ErpColumn { name: "active".into(), source: "Active".into(), column_type: FieldType::Boolean },
                ErpColumn { name: "opened_on".into(), source: "opened_on".into(), column_type: FieldType::Date },
            ],
        }
    }

    #[test]
    fn a_csv_export_becomes_one_full_load_file_with_the_operation_first() {
        let text = "HourlyRows,StationName,FirstReadingAt,Active,opened_on\n\
                    35064,Dongsi,2013-02-28 16:00:00,1,2013-03-01\n\
                    ,Tiantan,2013-02-28T16:00:00+00:00,false,\n";
        let files = encode(&table(), Path::new("s.csv"), text).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].key, "erp/dbo/stations/LOAD00000001.parquet");
        assert_eq!(files[0].rows, 2);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
            files[0].bytes.clone(),
        ))
        .unwrap();
        let names: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["op", "station", "first_reading_at", "hourly_rows", "active", "opened_on"]);
        // Every column is one Spectrum and Athena read as its Glue type.
        let parquet_schema = reader.parquet_schema().clone();
        for (i, (_, ty)) in table().columns().iter().enumerate() {
            crate::worker::sql_types::readable(ty.as_str(), &parquet_schema.column(i)).unwrap();
        }
        let batch = reader.build().unwrap().next().unwrap().unwrap();
        use arrow_array::Array as _;
        let op = batch.column(0).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        assert_eq!((op.value(0), op.value(1)), ("I", "I"));
        let rows = batch.column(3).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        assert_eq!(rows.value(0), 35064);
        assert!(rows.is_null(1));
        let first = batch.column(2).as_any().downcast_ref::<arrow_array::TimestampMicrosecondArray>().unwrap();
        assert_eq!(first.value(0), first.value(1));
        assert_eq!(first.value(0), 1_362_067_200_000_000);
    }

    #[test]
    fn a_bad_cell_or_header_is_named_and_nothing_is_encoded() {
        let header = "StationName,FirstReadingAt,HourlyRows,Active,opened_on\n";
        let bad = format!("{header}Dongsi,2013-02-28 16:00:00,35064,1,2013-03-01\nTiantan,yesterday,1,1,\n");
        let err = encode(&table(), Path::new("s.csv"), &bad).unwrap_err().to_string();
        assert_eq!(
            err,
            "s.csv:3: column `first_reading_at` (timestamp): `yesterday` is not a timestamp (RFC 3339, or \
             YYYY-MM-DD HH:MM:SS[.ffffff] in UTC)"
        );
        let err = encode(&table(), Path::new("s.csv"), "StationName,Extra\nx,y\n").unwrap_err().to_string();
        assert!(err.starts_with("s.csv:1: no column `FirstReadingAt` (or `first_reading_at`)"), "{err}");
        let extra = format!("{}Extra\n", header.trim_end().to_owned() + ",");
        let err = encode(&table(), Path::new("s.csv"), &extra).unwrap_err().to_string();
        assert!(err.contains("column `Extra` is not declared in erp.tables.stations"), "{err}");
        let err = encode(&table(), Path::new("s.csv"), header).unwrap_err().to_string();
        assert_eq!(err, "s.csv: no rows after the header");
        assert_eq!(load_file_name(10), "LOAD0000000A.parquet");
    }
}
