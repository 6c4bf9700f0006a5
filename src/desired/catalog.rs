//! The catalog component: the Glue database and one Parquet table per stream, partitioned by `dt`,
//! and one per ERP table (`[erp]`), over the raw zone's `erp/<schema>/<table>/`.

use serde_json::{Value, json};

use super::*;
use crate::config::environment::Environment;
use crate::model::address;
use crate::model::{self};
use crate::plan::{Component, Resource};

/// Glue's Parquet input format, output format and SerDe.
pub const PARQUET_INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";

/// See [`PARQUET_INPUT_FORMAT`].
pub const PARQUET_OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

/// See [`PARQUET_INPUT_FORMAT`].
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

pub(super) fn catalog(environment: &Environment, out: &mut Vec<Resource>) {
    let mut b = Builder { out, component: Component::Catalog };
    let database = model::glue_database_name(environment);
    b.add(
        address::GLUE_DATABASE.into(),
        database.clone(),
        attributes(&[
            ("description", json!(format!("indutech {}: the lake's curated zone", environment.name))),
            ("name", json!(database)),
        ]),
        &[],
        vec![],
    );
    // The catalog serves the curated zone (Spectrum reads it through the tables; the worker's
    // registered partitions exist only in Glue).
    b.protects(vec!["aws_s3_bucket.curated".into()]);
    let curated = model::bucket_name(environment, "curated");
    for stream in &environment.streams {
        b.add(
            address::glue_table(&stream.name),
            stream.name.clone(),
            parquet_table(
                &stream.columns(),
                &format!("s3://{curated}/{}/", stream.name),
                json!({"classification": "parquet", "parquet.compression": "ZSTD"}),
                json!([{"name": stream.partition_key, "type": "string"}]),
            ),
            &[],
            vec![address::GLUE_DATABASE.into()],
        );
        b.protects(vec!["aws_s3_bucket.curated".into()]);
    }
    // The ERP tables DMS writes into the raw zone, next to the streams (one external schema
    // sees both): no partition key, the operation column first as in DMS's files.
    if let Some(erp) = &environment.erp {
        let raw = model::bucket_name(environment, "raw");
        for table in &erp.tables {
            b.add(
                address::glue_table(&table.name),
                table.name.clone(),
                parquet_table(
                    &table.columns(),
                    &format!("s3://{raw}/{}", table.prefix()),
                    json!({"classification": "parquet"}),
                    json!([]),
                ),
                &[],
                vec![address::GLUE_DATABASE.into()],
            );
            b.protects(vec!["aws_s3_bucket.raw".into()]);
        }
    }
}

/// A Glue table's attributes over Parquet files at `location`.
fn parquet_table(
    columns: &[(String, crate::config::stream::FieldType)],
    location: &str,
    parameters: Value,
    partition_keys: Value,
) -> crate::plan::Attributes {
    let columns: Vec<Value> = columns.iter().map(|(name, ty)| json!({"name": name, "type": ty.as_str()})).collect();
    attributes(&[
        ("columns", Value::Array(columns)),
        ("input_format", json!(PARQUET_INPUT_FORMAT)),
        ("location", json!(location)),
        ("output_format", json!(PARQUET_OUTPUT_FORMAT)),
        ("parameters", parameters),
        ("partition_keys", partition_keys),
        ("serialization_library", json!(PARQUET_SERDE)),
        ("table_type", json!("EXTERNAL_TABLE")),
    ])
}
