//! Whether the SQL engines that read the lake through the Glue catalog (Redshift Spectrum and
//! Athena) can read a Parquet column as the type its Glue column declares. A mismatch does not
//! fail when the file is written or registered: it fails the first query. Pure.
//!
//! The rules, from the engines' documentation (Redshift "Data types for Redshift Spectrum
//! external tables" and Athena "Data types in Athena" / "Parquet SerDe"), kept to what both
//! accept:
//!
//! | Glue type | Parquet physical type | logical (converted) type |
//! |---|---|---|
//! | `string` | BYTE_ARRAY | STRING (UTF8), ENUM or JSON; plain BYTE_ARRAY is binary (VARBYTE) |
//! | `int` | INT32 | none, or a signed INTEGER of 8, 16 or 32 bits |
//! | `bigint` | INT64 | none, or a signed INTEGER of 64 bits |
//! | `double` | DOUBLE | none (FLOAT is `real`/`float4`) |
//! | `boolean` | BOOLEAN | none |
//! | `timestamp` | INT64 with TIMESTAMP in MILLIS or MICROS, or INT96 | (NANOS is refused by Spectrum) |
//! | `date` | INT32 | DATE |
//!
//! Repeated (list) columns map to no scalar Glue type. The partition key (`dt`) is not in the
//! files: its values are the `dt=...` path segments, read as `string`.

use parquet::basic::{ConvertedType, LogicalType, TimeUnit, Type as Physical};
use parquet::schema::types::ColumnDescriptor;

/// Ok when Spectrum and Athena read `column` as Glue type `glue_type` (`string`, `int`,
/// `bigint`, `double`, `boolean`, `timestamp`, `date`); Err says what the file holds and why it
/// does not fit, such as "INT32 (no logical type) is not bigint: INT64 expected".
pub fn readable(glue_type: &str, column: &ColumnDescriptor) -> Result<(), String> {
    let physical = column.physical_type();
    let logical = column.logical_type_ref();
    let converted = column.converted_type();
    let held = describe(physical, logical, converted);
    if column.max_rep_level() > 0 {
        return Err(format!("{held} is repeated: no scalar Glue type reads a list"));
    }
    let fits = match glue_type {
        "string" => {
            physical == Physical::BYTE_ARRAY
                && (matches!(logical, Some(LogicalType::String | LogicalType::Enum | LogicalType::Json))
                    || matches!(converted, ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON))
        }
        "int" => {
            physical == Physical::INT32
                && match logical {
                    None => matches!(
                        converted,
                        ConvertedType::NONE | ConvertedType::INT_8 | ConvertedType::INT_16 | ConvertedType::INT_32
                    ),
                    Some(LogicalType::Integer(int)) => int.is_signed && int.bit_width <= 32,
                    Some(_) => false,
                }
        }
        "bigint" => {
            physical == Physical::INT64
                && match logical {
                    None => matches!(converted, ConvertedType::NONE | ConvertedType::INT_64),
                    Some(LogicalType::Integer(int)) => int.is_signed && int.bit_width == 64,
                    Some(_) => false,
                }
        }
        "double" => physical == Physical::DOUBLE && logical.is_none(),
        "boolean" => physical == Physical::BOOLEAN,
        "timestamp" => {
            physical == Physical::INT96
                || (physical == Physical::INT64
                    && match logical {
                        Some(LogicalType::Timestamp(timestamp)) => !matches!(timestamp.unit, TimeUnit::NANOS),
                        None => matches!(converted, ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS),
                        Some(_) => false,
                    })
        }
        "date" => {
            physical == Physical::INT32
                && (matches!(logical, Some(LogicalType::Date)) || converted == ConvertedType::DATE)
        }
        other => return Err(format!("Glue type `{other}` is not one indutech declares")),
    };
    if fits { Ok(()) } else { Err(format!("{held} is not {glue_type}: {}", expected(glue_type))) }
}

fn expected(glue_type: &str) -> &'static str {
    match glue_type {
        "string" => "BYTE_ARRAY annotated STRING expected",
        "int" => "INT32 (signed, at most 32 bits) expected",
        "bigint" => "INT64 (signed) expected",
        "double" => "DOUBLE expected",
        "boolean" => "BOOLEAN expected",
        "timestamp" => "INT64 TIMESTAMP in milliseconds or microseconds, or INT96, expected",
        _ => "INT32 annotated DATE expected",
    }
}

fn describe(physical: Physical, logical: Option<&LogicalType>, converted: ConvertedType) -> String {
    match (logical, converted) {
        (Some(logical), _) => format!("{physical} ({logical:?})"),
        (None, ConvertedType::NONE) => format!("{physical} (no logical type)"),
        (None, converted) => format!("{physical} ({converted})"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use parquet::schema::parser::parse_message_type;
    use parquet::schema::types::SchemaDescriptor;

    fn columns(message: &str) -> SchemaDescriptor {
        SchemaDescriptor::new(Arc::new(parse_message_type(message).unwrap()))
    }

    #[test]
    fn each_glue_type_reads_its_parquet_types_and_refuses_the_rest() {
        let schema = columns(
            "message m {
                required binary s (STRING);
                required binary raw;
                required int32 i;
                required int32 small (INTEGER(16, true));
                required int32 unsigned (INTEGER(32, false));
                required int64 b;
                required int64 micros (TIMESTAMP(MICROS, true));
                required int64 nanos (TIMESTAMP(NANOS, true));
                required int96 legacy;
                required int32 d (DATE);
                required double x;
                required float f;
                required boolean flag;
                repeated int64 list;
            }",
        );
        let verdict = |glue: &str, name: &str| {
            let column = schema.columns().iter().find(|c| c.name() == name).unwrap();
            readable(glue, column)
        };
        for (glue, name) in [
            ("string", "s"),
            ("int", "i"),
            ("int", "small"),
            ("bigint", "b"),
            ("timestamp", "micros"),
            ("timestamp", "legacy"),
            ("date", "d"),
            ("double", "x"),
            ("boolean", "flag"),
        ] {
            assert_eq!(verdict(glue, name), Ok(()), "{glue} <- {name}");
        }
        for (glue, name) in [
            ("string", "raw"),
            ("bigint", "i"),
            ("int", "b"),
            ("int", "unsigned"),
            ("timestamp", "nanos"),
            ("timestamp", "b"),
            ("date", "i"),
            ("double", "f"),
            ("bigint", "list"),
            ("string", "d"),
        ] {
            assert!(verdict(glue, name).is_err(), "{glue} <- {name} must be refused");
        }
        assert_eq!(
            verdict("bigint", "i"),
            Err("INT32 (no logical type) is not bigint: INT64 (signed) expected".to_owned())
        );
    }

    #[test]
    fn every_column_the_worker_writes_is_readable_as_its_glue_type() {
        for name in ["dev", "staging", "prod"] {
            for stream in crate::config::shipped(name).streams {
                let codec = crate::worker::codec::Codec::new(Arc::new(stream.clone()));
                let mut rows = codec.rows();
                let body = crate::worker::codec::encode_parquet(&mut rows, "t/0").unwrap();
                let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(body)).unwrap();
                let schema = parquet::file::reader::FileReader::metadata(&reader).file_metadata().schema_descr_ptr();
                for (column, ty) in stream.columns() {
                    let found = schema.columns().iter().find(|c| c.name() == column).expect("the column is written");
                    assert_eq!(readable(ty.as_str(), found), Ok(()), "{name} {}.{column}", stream.name);
                }
            }
        }
    }
}
