//! Stream definitions: topic, partitions, replication, schema and enrichment, as configuration.
//!
//! A stream is declared once (a file in `environments/streams/`) and everything else derives
//! from it: the Glue table columns, the Parquet schema the worker writes and the validation it
//! applies to each record. Nothing about a particular stream is hard-coded elsewhere.

use std::collections::BTreeSet;

use toml_span::Spanned;

use crate::config::decode::{Reader, Table, decode_enum};

/// One stream: a topic and the typed table its records land in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stream {
    /// Stream name, also the default topic and Glue table name (`client_tickets`).
    pub name: String,
    /// Kafka topic the records are read from (default: the stream name).
    pub topic: String,
    /// Topic partitions (>= 1); an environment may override it.
    pub partitions: u32,
    /// Topic replication factor (>= 1); an environment may override it.
    pub replication: u16,
    /// Source key whose value is the Kafka message key, so per-key order is kept (optional).
    pub message_key: Option<String>,
    /// Typed columns, in table order.
    pub fields: Vec<Field>,
    /// Where each record's event time comes from; its UTC date is the partition value.
    pub event_time: EventTime,
    /// The plausible event times: a record outside goes to the rejected zone with the reason.
    pub event_window: EventWindow,
    /// Hive partition key of the lake prefixes and the Glue table (`dt`); never also a column.
    pub partition_key: String,
    /// How much event time one partition value covers (`partition_granularity`, default
    /// `day`): its values are `YYYY-MM-DD-HH`, `YYYY-MM-DD` or `YYYY-MM` of the UTC event time.
    pub granularity: Granularity,
    /// Keyword categorisation, if the stream has one.
    pub categorize: Option<Categorize>,
    /// MB/s produced into the stream, after compression (`[streams.NAME] ingress_mb_per_sec` in
    /// an environment); None: an equal part of what the declared streams leave of
    /// `redpanda.throughput.ingress_mb_per_sec`. Only sizing reads it.
    pub ingress_mb_per_sec: Option<u32>,
}

/// The column every typed row gets: when the worker ingested it (UTC timestamp).
pub const INGESTED_AT_COLUMN: &str = "ingested_at";
/// The column every typed row gets: the topic partition it was read from (int).
pub const PARTITION_COLUMN: &str = "kafka_partition";
/// The column every typed row gets: the offset it was read at (bigint). With
/// [`PARTITION_COLUMN`] it lets any SQL reader prove that every offset landed once.
pub const OFFSET_COLUMN: &str = "kafka_offset";
/// The columns every stream gets after its own, in order.
pub const SOURCE_COLUMNS: [(&str, FieldType); 3] = [
    (INGESTED_AT_COLUMN, FieldType::Timestamp),
    (PARTITION_COLUMN, FieldType::Int),
    (OFFSET_COLUMN, FieldType::Bigint),
];

/// One typed column.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Field {
    /// Column name (lower-case Glue/Hive identifier).
    pub name: String,
    /// Key in the incoming JSON object (default: `name`), such as `PM2.5`.
    pub source: String,
    /// Column type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Whether null (absent, JSON null or a null marker) is allowed.
    pub nullable: bool,
    /// Input texts that mean null, such as `?` or `NA`.
    pub null_markers: Vec<String>,
    /// For `timestamp` and `date`: the input format, `rfc3339` or a chrono strftime pattern
    /// such as `%d/%m/%Y %H:%M`; for `string`: `uuid` to require a UUID.
    pub format: Option<String>,
    /// For naive timestamps: their UTC offset, such as `+08:00` (default `+00:00`).
    pub utc_offset: Option<String>,
    /// Allowed values of a string column (empty: any).
    pub allowed: Vec<String>,
}

/// Column types, named as in Glue and Hive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// UTF-8 text.
    String,
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    Bigint,
    /// 64-bit float.
    Double,
    /// true/false.
    Boolean,
    /// Instant, microseconds, UTC.
    Timestamp,
    /// Calendar date.
    Date,
}
decode_enum!(FieldType {
    String => "string",
    Int => "int",
    Bigint => "bigint",
    Double => "double",
    Boolean => "boolean",
    Timestamp => "timestamp",
    Date => "date",
});

/// How much event time one partition value covers. A history backfill lands in fewer, larger
/// files with `month`; a high-volume stream queried by the hour can use `hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// `YYYY-MM-DD-HH` (UTC hour).
    Hour,
    /// `YYYY-MM-DD` (UTC date).
    #[default]
    Day,
    /// `YYYY-MM` (UTC month).
    Month,
}
decode_enum!(Granularity { Hour => "hour", Day => "day", Month => "month" });

/// Microseconds per hour.
const HOUR_MICROS: i64 = 3_600_000_000;

impl Granularity {
    /// The partition index of an instant (`micros` since the epoch, UTC): hours, days or months
    /// since 1970-01-01T00:00Z (negative before), saturated to the `i32` range.
    pub fn index_of_micros(self, micros: i64) -> i32 {
        let hours = micros.div_euclid(HOUR_MICROS);
        let index = match self {
            Granularity::Hour => hours,
            Granularity::Day => hours.div_euclid(24),
            Granularity::Month => {
                let days = hours.div_euclid(24);
                match chrono::DateTime::from_timestamp(days * 86_400, 0) {
                    Some(t) => {
                        use chrono::Datelike as _;
                        (i64::from(t.year()) - 1970) * 12 + i64::from(t.month0())
                    }
                    None => days.signum() * i64::from(i32::MAX),
                }
            }
        };
        i32::try_from(index).unwrap_or(if index < 0 { i32::MIN } else { i32::MAX })
    }

    /// The partition value of an index from [`Granularity::index_of_micros`]:
    /// `2026-03-02-13`, `2026-03-02` or `2026-03` (sorts as the time it covers).
    pub fn value(self, index: i32) -> String {
        let index = i64::from(index);
        let at = |hours: i64| chrono::DateTime::from_timestamp(hours * 3600, 0);
        let text = match self {
            Granularity::Hour => at(index).map(|t| t.format("%Y-%m-%d-%H").to_string()),
            Granularity::Day => at(index * 24).map(|t| t.format("%Y-%m-%d").to_string()),
            Granularity::Month => {
                let (year, month0) = (1970 + index.div_euclid(12), index.rem_euclid(12));
                (-9999..=9999).contains(&year).then(|| format!("{year:04}-{:02}", month0 + 1))
            }
        };
        text.unwrap_or_else(|| format!("{}{index}", self.as_str()))
    }
}

/// Where a record's event time comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTime {
    /// A `timestamp` field of the record.
    Field(String),
    /// Integer fields for year, month, day and hour, combined into a new timestamp column.
    Parts {
        /// Field holding the year.
        year: String,
        /// Field holding the month (1-12).
        month: String,
        /// Field holding the day of month.
        day: String,
        /// Field holding the hour (0-23).
        hour: String,
        /// UTC offset of the parts, such as `+08:00`.
        utc_offset: String,
        /// Name of the timestamp column added to the table.
        column: String,
    },
}

/// The event times a stream accepts (`[event_time]` keys `not_before` and `max_ahead_days`):
/// garbage dates would each open a `dt` partition of their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EventWindow {
    /// Earliest accepted event date (UTC), if any.
    pub not_before: Option<chrono::NaiveDate>,
    /// Latest accepted event time, in days after the record's ingestion, if any.
    pub max_ahead_days: Option<u32>,
}

/// Keyword categorisation: the first rule whose keywords occur (case-insensitive, whole words)
/// in the input fields names the category, else `default`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Categorize {
    /// Column the category is written to.
    pub column: String,
    /// String fields searched, concatenated with a space.
    pub inputs: Vec<String>,
    /// Category when no rule matches.
    pub default: String,
    /// Rules, in priority order.
    pub rules: Vec<CategoryRule>,
}

/// One categorisation rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CategoryRule {
    /// Category written when the rule matches.
    pub category: String,
    /// Whole words, matched case-insensitively.
    pub keywords: Vec<String>,
}

impl Stream {
    /// Every column of the typed table in order: fields, the derived event-time column (if
    /// any), the category (if any), then `ingested_at`. The partition key is not among them.
    pub fn columns(&self) -> Vec<(String, FieldType)> {
        let mut columns: Vec<(String, FieldType)> =
            self.fields.iter().map(|f| (f.name.clone(), f.field_type)).collect();
        if let EventTime::Parts { column, .. } = &self.event_time {
            columns.push((column.clone(), FieldType::Timestamp));
        }
        if let Some(categorize) = &self.categorize {
            columns.push((categorize.column.clone(), FieldType::String));
        }
        columns.extend(SOURCE_COLUMNS.iter().map(|(name, ty)| ((*name).to_owned(), *ty)));
        columns
    }
}

/// Is `name` a column name Glue, Hive and Spectrum accept unquoted?
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 127
}

/// Is `name` a valid Kafka topic name?
pub(crate) fn is_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Checks a UTC offset spelled `+HH:MM` or `-HH:MM`.
pub(crate) fn is_utc_offset(text: &str) -> bool {
    text.len() == 6
        && matches!(&text[..1], "+" | "-")
        && text[1..3].parse::<u8>().is_ok_and(|h| h <= 14)
        && &text[3..4] == ":"
        && text[4..6].parse::<u8>().is_ok_and(|m| m < 60)
}

/// Checks a timestamp input format: `rfc3339` or a strftime pattern chrono understands.
fn check_format(format: &str) -> Result<(), String> {
    if format == "rfc3339" {
        return Ok(());
    }
    let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
    if items.iter().any(|item| matches!(item, chrono::format::Item::Error)) {
        return Err(format!("`{format}` is not a valid strftime pattern (or `rfc3339`)"));
    }
    if !format.contains('%') {
        return Err(format!("`{format}` has no strftime specifier such as %Y; use `rfc3339` or a pattern"));
    }
    Ok(())
}

/// Decodes and checks one stream file's root table; problems go to `reader`.
pub(crate) fn decode_stream(reader: &mut Reader<'_>, mut root: Table<'_>) -> Option<Stream> {
    let name = reader.required::<String>(&mut root, "name");
    let topic = reader.optional::<String>(&mut root, "topic");
    let partitions = reader.required::<u32>(&mut root, "partitions");
    let replication = reader.required::<u16>(&mut root, "replication");
    let message_key = reader.optional::<String>(&mut root, "message_key");
    let partition_key = reader.or_default(&mut root, "partition_key", "dt".to_owned());
    let granularity = reader.or_default(&mut root, "partition_granularity", Granularity::Day);
    let field_tables = reader.tables(&mut root, "fields");
    let fields_span = root.span();
    let fields: Vec<Spanned<Field>> = field_tables.into_iter().filter_map(|t| decode_field(reader, t)).collect();
    let mut event_window = EventWindow::default();
    let event_time =
        reader.required_table(&mut root, "event_time").and_then(|t| decode_event_time(reader, t, &mut event_window));
    let categorize = reader.optional_table(&mut root, "categorize").and_then(|t| decode_categorize(reader, t));
    reader.finish(root);

    if let Some(name) = &name
        && !is_identifier(&name.value)
    {
        reader.error(
            name.span,
            "name",
            format!("`{}` is not a valid stream name (lower-case letters, digits and _)", name.value),
        );
    }
    if let Some(topic) = &topic
        && !is_topic_name(&topic.value)
    {
        reader.error(topic.span, "topic", format!("`{}` is not a valid Kafka topic name", topic.value));
    }
    for (key, value) in [
        ("partitions", partitions.as_ref().map(|p| (p.span, u64::from(p.value)))),
        ("replication", replication.as_ref().map(|r| (r.span, u64::from(r.value)))),
    ] {
        if let Some((span, 0)) = value {
            reader.error(span, key, "must be at least 1");
        }
    }
    if fields.is_empty() {
        reader.error(fields_span, "fields", "a stream needs at least one `[[fields]]` entry");
    }

    // Column names: unique, and none equal to the partition key.
    let mut columns: Vec<(String, toml_span::Span, String)> = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        columns.push((field.value.name.clone(), field.span, format!("fields[{i}].name")));
    }
    let (event_time_value, event_time_span) = match event_time {
        Some(e) => (Some(e.value), e.span),
        None => (None, toml_span::Span::new(0, 0)),
    };
    if let Some(EventTime::Parts { column, .. }) = &event_time_value {
        columns.push((column.clone(), event_time_span, "event_time.column".to_owned()));
    }
    if let Some(c) = &categorize {
        columns.push((c.value.column.clone(), c.span, "categorize.column".to_owned()));
    }
    let categorize_value = categorize;
    for (column, _) in SOURCE_COLUMNS {
        columns.push((column.to_owned(), fields_span, "fields".to_owned()));
    }
    let mut seen = BTreeSet::new();
    for (column, span, field) in &columns {
        if !seen.insert(column.as_str()) {
            let message = if SOURCE_COLUMNS.iter().any(|(c, _)| c == column) {
                format!("duplicate field `{column}`: every stream gets a column `{column}`")
            } else {
                format!("duplicate field `{column}`")
            };
            reader.error(*span, field, message);
        }
        if *column == partition_key.value {
            reader.error(
                *span,
                field,
                format!("`{column}` is the partition key; a partition key must not also be a column"),
            );
        }
    }
    if !is_identifier(&partition_key.value) {
        reader.error(
            partition_key.span,
            "partition_key",
            format!("`{}` is not a valid column name", partition_key.value),
        );
    }

    for (i, field) in fields.iter().enumerate() {
        if let Some(first) =
            fields[..i].iter().find(|f| f.value.source == field.value.source && f.value.name != field.value.name)
        {
            reader.error(
                field.span,
                &format!("fields[{i}].source"),
                format!(
                    "fields `{}` and `{}` both read the input key `{}`: each key feeds one field",
                    first.value.name, field.value.name, field.value.source
                ),
            );
        }
    }
    let field_by_name = |name: &str| fields.iter().find(|f| f.value.name == name).map(|f| &f.value);
    if let Some(key) = &message_key
        && !fields.iter().any(|f| f.value.source == key.value)
    {
        reader.error(key.span, "message_key", format!("`{}` is not the source of any field", key.value));
    }
    match &event_time_value {
        Some(EventTime::Field(field)) => match field_by_name(field) {
            Some(f) if f.field_type == FieldType::Timestamp && !f.nullable => {}
            Some(_) => reader.error(
                event_time_span,
                "event_time.field",
                format!("`{field}` must be a non-nullable timestamp field"),
            ),
            None => reader.error(event_time_span, "event_time.field", format!("no field named `{field}`")),
        },
        Some(EventTime::Parts { year, month, day, hour, .. }) => {
            for (key, part) in [("year", year), ("month", month), ("day", day), ("hour", hour)] {
                match field_by_name(part) {
                    Some(f) if matches!(f.field_type, FieldType::Int | FieldType::Bigint) && !f.nullable => {}
                    Some(_) => reader.error(
                        event_time_span,
                        &format!("event_time.{key}"),
                        format!("`{part}` must be a non-nullable int or bigint field"),
                    ),
                    None => {
                        reader.error(event_time_span, &format!("event_time.{key}"), format!("no field named `{part}`"))
                    }
                }
            }
        }
        None => {}
    }
    if let Some(categorize) = &categorize_value {
        for input in &categorize.value.inputs {
            match field_by_name(input) {
                Some(f) if f.field_type == FieldType::String => {}
                Some(_) => {
                    reader.error(categorize.span, "categorize.inputs", format!("`{input}` must be a string field"))
                }
                None => reader.error(categorize.span, "categorize.inputs", format!("no field named `{input}`")),
            }
        }
    }

    let name = name?.value;
    Some(Stream {
        topic: topic.map(|t| t.value).unwrap_or_else(|| name.clone()),
        name,
        partitions: partitions?.value,
        replication: replication?.value,
        message_key: message_key.map(|k| k.value),
        fields: fields.into_iter().map(|f| f.value).collect(),
        event_time: event_time_value?,
        event_window,
        partition_key: partition_key.value,
        granularity: granularity.value,
        categorize: categorize_value.map(|c| c.value),
        ingress_mb_per_sec: None,
    })
}

fn decode_field(reader: &mut Reader<'_>, mut table: Table<'_>) -> Option<Spanned<Field>> {
    let path = table.path().to_owned();
    let name = reader.required::<String>(&mut table, "name");
    let source = reader.optional::<String>(&mut table, "source");
    let field_type = reader.required::<FieldType>(&mut table, "type");
    let nullable = reader.or_default(&mut table, "nullable", false);
    let null_markers = reader.or_default::<Vec<String>>(&mut table, "null_markers", Vec::new());
    let format = reader.optional::<String>(&mut table, "format");
    let utc_offset = reader.optional::<String>(&mut table, "utc_offset");
    let allowed = reader.or_default::<Vec<String>>(&mut table, "allowed", Vec::new());
    reader.finish(table);

    if let Some(name) = &name
        && !is_identifier(&name.value)
    {
        reader.error(name.span, &format!("{path}.name"), format!("`{}` is not a valid column name (lower-case letters, digits and _, not starting with a digit); use `source` for the input key", name.value));
    }
    let field_type = field_type?;
    let is_time = matches!(field_type.value, FieldType::Timestamp | FieldType::Date);
    match (&format, is_time) {
        (Some(format), true) => {
            if let Err(message) = check_format(&format.value) {
                reader.error(format.span, &format!("{path}.format"), message);
            }
        }
        (Some(format), false) if field_type.value == FieldType::String && format.value == "uuid" => {}
        (Some(format), false) => reader.error(
            format.span,
            &format!("{path}.format"),
            "`format` applies to timestamp and date fields, and `uuid` to string fields",
        ),
        (None, true) => reader.error(
            field_type.span,
            &format!("{path}.format"),
            format!("a {} field needs a `format` (`rfc3339` or a strftime pattern)", field_type.value.as_str()),
        ),
        (None, false) => {}
    }
    if let Some(offset) = &utc_offset {
        if field_type.value != FieldType::Timestamp {
            reader.error(offset.span, &format!("{path}.utc_offset"), "`utc_offset` applies to timestamp fields only");
        } else if !is_utc_offset(&offset.value) {
            reader.error(
                offset.span,
                &format!("{path}.utc_offset"),
                format!("`{}` is not a UTC offset such as +08:00", offset.value),
            );
        }
    }
    if !allowed.value.is_empty() && field_type.value != FieldType::String {
        reader.error(allowed.span, &format!("{path}.allowed"), "`allowed` applies to string fields only");
    }
    if !null_markers.value.is_empty() && !nullable.value {
        reader.error(
            null_markers.span,
            &format!("{path}.null_markers"),
            "null markers on a non-nullable field; set `nullable = true`",
        );
    }
    let name = name?;
    let span = name.span;
    let name = name.value;
    Some(Spanned::with_span(
        Field {
            source: source.map(|s| s.value).unwrap_or_else(|| name.clone()),
            name,
            field_type: field_type.value,
            nullable: nullable.value,
            null_markers: null_markers.value,
            format: format.map(|f| f.value),
            utc_offset: utc_offset.map(|o| o.value),
            allowed: allowed.value,
        },
        span,
    ))
}

fn decode_event_time(
    reader: &mut Reader<'_>,
    mut table: Table<'_>,
    window: &mut EventWindow,
) -> Option<Spanned<EventTime>> {
    let span = table.span();
    let not_before = reader.optional::<String>(&mut table, "not_before");
    let max_ahead_days = reader.optional::<u32>(&mut table, "max_ahead_days");
    if let Some(date) = &not_before {
        match chrono::NaiveDate::parse_from_str(&date.value, "%Y-%m-%d") {
            Ok(parsed) => window.not_before = Some(parsed),
            Err(_) => reader.error(
                date.span,
                "event_time.not_before",
                format!("`{}` is not a date such as 2015-01-01", date.value),
            ),
        }
    }
    window.max_ahead_days = max_ahead_days.map(|d| d.value);
    let field = reader.optional::<String>(&mut table, "field");
    let year = reader.optional::<String>(&mut table, "year");
    let month = reader.optional::<String>(&mut table, "month");
    let day = reader.optional::<String>(&mut table, "day");
    let hour = reader.optional::<String>(&mut table, "hour");
    let utc_offset = reader.optional::<String>(&mut table, "utc_offset");
    let column = reader.optional::<String>(&mut table, "column");
    reader.finish(table);
    let value = match (field, year, month, day, hour) {
        (Some(field), None, None, None, None) => EventTime::Field(field.value),
        (None, Some(year), Some(month), Some(day), Some(hour)) => {
            let utc_offset = utc_offset.map(|o| o.value).unwrap_or_else(|| "+00:00".to_owned());
            if !is_utc_offset(&utc_offset) {
                reader.error(
                    span,
                    "event_time.utc_offset",
                    format!("`{utc_offset}` is not a UTC offset such as +08:00"),
                );
            }
            let Some(column) = column else {
                reader.error(
                    span,
                    "event_time",
                    "missing required key `column` (the timestamp column built from the parts)",
                );
                return None;
            };
            if !is_identifier(&column.value) {
                reader.error(
                    column.span,
                    "event_time.column",
                    format!("`{}` is not a valid column name", column.value),
                );
            }
            EventTime::Parts {
                year: year.value,
                month: month.value,
                day: day.value,
                hour: hour.value,
                utc_offset,
                column: column.value,
            }
        }
        _ => {
            reader.error(
                span,
                "event_time",
                "give either `field` (a timestamp field) or all of `year`, `month`, `day`, `hour`",
            );
            return None;
        }
    };
    Some(Spanned::with_span(value, span))
}

fn decode_categorize(reader: &mut Reader<'_>, mut table: Table<'_>) -> Option<Spanned<Categorize>> {
    let span = table.span();
    let column = reader.or_default(&mut table, "column", "category".to_owned());
    let inputs = reader.required::<Vec<String>>(&mut table, "inputs");
    let default = reader.or_default(&mut table, "default", "other".to_owned());
    let rule_tables = reader.tables(&mut table, "rules");
    reader.finish(table);
    let mut rules = Vec::new();
    for mut rule in rule_tables {
        let path = rule.path().to_owned();
        let category = reader.required::<String>(&mut rule, "category");
        let keywords = reader.required::<Vec<String>>(&mut rule, "keywords");
        reader.finish(rule);
        if let Some(keywords) = &keywords
            && (keywords.value.is_empty()
                || keywords.value.iter().any(|k| k.is_empty() || !k.chars().all(char::is_alphanumeric)))
        {
            reader.error(
                keywords.span,
                &format!("{path}.keywords"),
                "keywords must be non-empty single words of letters and digits (texts are split into words at every other character)",
            );
        }
        if let (Some(category), Some(keywords)) = (category, keywords) {
            rules.push(CategoryRule { category: category.value, keywords: keywords.value });
        }
    }
    if !is_identifier(&column.value) {
        reader.error(column.span, "categorize.column", format!("`{}` is not a valid column name", column.value));
    }
    Some(Spanned::with_span(
        Categorize { column: column.value, inputs: inputs?.value, default: default.value, rules },
        span,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_follow_the_granularity() {
        // 2026-03-02T13:45:00Z, and one microsecond before the epoch.
        let micros = 1_772_459_100_000_000;
        assert_eq!(Granularity::Hour.value(Granularity::Hour.index_of_micros(micros)), "2026-03-02-13");
        assert_eq!(Granularity::Day.value(Granularity::Day.index_of_micros(micros)), "2026-03-02");
        assert_eq!(Granularity::Month.value(Granularity::Month.index_of_micros(micros)), "2026-03");
        assert_eq!(Granularity::Day.value(Granularity::Day.index_of_micros(-1)), "1969-12-31");
        assert_eq!(Granularity::Month.value(Granularity::Month.index_of_micros(-1)), "1969-12");
        assert_eq!(Granularity::Hour.value(Granularity::Hour.index_of_micros(-1)), "1969-12-31-23");
        // Indexes are in time order, so values sort as the time they cover.
        let months: Vec<i32> =
            [0, 31, 59, 365].iter().map(|d| Granularity::Month.index_of_micros(d * 86_400_000_000)).collect();
        assert_eq!(months, [0, 1, 2, 12]);
        assert_eq!(Granularity::Month.value(12), "1971-01");
    }
}
