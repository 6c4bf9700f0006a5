//! The worker's pure pipeline for one stream: JSON payload -> validated, typed, enriched row ->
//! Arrow columns -> Parquet (zstd) bytes. No I/O; the consumer loop and `bench worker` share it.
//!
//! Everything comes from the stream definition ([`Stream`]): which JSON key feeds which column
//! (`source`), the column type, null markers, input formats (`rfc3339` or a strftime pattern),
//! allowed values, the event time (a field, or year/month/day/hour parts with a UTC offset) and
//! the keyword categorisation. The Arrow schema has exactly [`Stream::columns`], so the Parquet
//! files match the Glue table generated from the same definition.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Datelike as _, FixedOffset, NaiveDate, TimeZone, Utc};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::config::stream::{EventTime, FieldType, Stream};

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01: Arrow's `Date32` counts from the epoch.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Why a record was rejected: the field (when one is to blame) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The JSON key (the field's `source`) at fault, if any.
    pub field: Option<String>,
    /// What is wrong, such as "missing required field" or "`31/2/2016` does not match `%d/%m/%Y %H:%M`".
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field `{field}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn reject(field: &str, message: impl Into<String>) -> Rejection {
    Rejection { field: Some(field.to_owned()), message: message.into() }
}

/// A JSON scalar as it arrived, borrowed from the payload where possible.
#[derive(Debug)]
enum Raw<'a> {
    Absent,
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Nested(&'static str),
}

impl Raw<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Raw::Absent => "absent",
            Raw::Null => "null",
            Raw::Str(_) => "a string",
            Raw::Int(_) | Raw::UInt(_) | Raw::Float(_) => "a number",
            Raw::Bool(_) => "a boolean",
            Raw::Nested(kind) => kind,
        }
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Raw::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Raw::Float(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Raw::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Nested("an object"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Raw::Nested("an array"))
    }
}

impl<'de> de::Deserialize<'de> for Raw<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

/// A JSON object's key, borrowed from the payload unless it has escapes (serde's own
/// `Cow<str>` always copies: an allocation and a copy per key, 6% of the ITSM log's
/// instructions).
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Reads one JSON object into slots by key (the field's `source`); unknown keys are skipped.
/// Producers write keys in one order, most in the order of their fields or sorted (Go's
/// `encoding/json` sorts a map's keys, so does Python's `sort_keys`, and the generated
/// tickets are sorted): the key after the last match in field order is tried first, then the
/// one after it in byte order, then all (the tickets' sorted keys cost a scan of up to all of
/// them for most keys).
struct RecordSeed<'s, 'a> {
    keys: &'s [Box<str>],
    /// [`Codec::sorted_next`].
    sorted_next: &'s [usize],
    slots: &'s mut [Raw<'a>],
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut next, mut after) = (0, self.keys.len());
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let key = key.as_ref();
            let try_slot = |slot: usize| self.keys.get(slot).is_some_and(|k| same(k, key));
            let slot = if try_slot(next) {
                Some(next)
            } else {
                match self.sorted_next.get(after) {
                    Some(&sorted) if try_slot(sorted) => Some(sorted),
                    _ => self.keys.iter().position(|k| same(k, key)),
                }
            };
            match slot {
                Some(slot) => {
                    self.slots[slot] = map.next_value::<Raw<'de>>()?;
                    (next, after) = (slot + 1, slot);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Cells a decoded record keeps inline (on the stack) before spilling to the heap; streams
/// rarely have more columns.
const INLINE_CELLS: usize = 24;

/// One decoded row: a [`Cell`] per column before the source columns (the stream's fields,
/// then the event time when built from parts, the category, `ingested_at`).
pub type Row<'a> = smallvec::SmallVec<[Cell<'a>; INLINE_CELLS]>;

/// A typed cell, borrowing text from the payload where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// SQL NULL.
    Null,
    /// Text.
    Str(Cow<'a, str>),
    /// 32-bit integer.
    I32(i32),
    /// 64-bit integer.
    I64(i64),
    /// 64-bit float.
    F64(f64),
    /// Boolean.
    Bool(bool),
    /// Timestamp, microseconds since the epoch, UTC.
    Micros(i64),
    /// Date, days since the epoch.
    Days(i32),
}

/// How one field is read.
#[derive(Debug)]
struct FieldSpec {
    source: String,
    field_type: FieldType,
    nullable: bool,
    null_markers: Vec<String>,
    format: Format,
    allowed: Vec<String>,
}

#[derive(Debug)]
enum Format {
    None,
    Rfc3339,
    Uuid,
    /// A strftime pattern and the UTC offset of the naive values it yields.
    Pattern(Pattern, FixedOffset),
}

/// A strftime pattern, parsed once (chrono would parse the pattern text again for every value).
#[derive(Debug)]
struct Pattern {
    text: String,
    items: Vec<chrono::format::Item<'static>>,
    /// The pattern as fixed numeric fields and ASCII literals, when it is only `%Y %m %d %H %M`
    /// (each once, all five, never two in a row) and optionally `%S`, with literals of
    /// punctuation or single spaces (letters and other white space leave it to chrono):
    /// read byte by byte ([`Pattern::datetime`]; chrono's general parser was 8% of the ITSM
    /// log's instructions).
    fast: Option<Vec<Part>>,
}

/// One piece of a [`Pattern`]'s fast form.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    /// This byte, exactly.
    Literal(u8),
    /// Exactly 4 digits.
    Year,
    /// 1 or 2 digits (chrono reads `%m %d %H %M %S` so).
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Pattern {
    fn new(text: &str) -> Self {
        let items = chrono::format::StrftimeItems::new(text).parse_to_owned().unwrap_or_default();
        Pattern { text: text.to_owned(), items, fast: Self::fast_form(text) }
    }

    fn fast_form(text: &str) -> Option<Vec<Part>> {
        let mut parts = Vec::new();
        let mut bytes = text.bytes();
        while let Some(b) = bytes.next() {
            let part = match b {
                b'%' => match bytes.next()? {
                    b'Y' => Part::Year,
                    b'm' => Part::Month,
                    b'd' => Part::Day,
                    b'H' => Part::Hour,
                    b'M' => Part::Minute,
                    b'S' => Part::Second,
                    _ => return None,
                },
                b' ' => Part::Literal(b' '),
                b if b.is_ascii_graphic() && !b.is_ascii_alphanumeric() => Part::Literal(b),
                _ => return None,
            };
            if !matches!(part, Part::Literal(_)) && parts.contains(&part) {
                return None;
            }
            // Two numbers in a row would need chrono's rules for where the first ends.
            if !matches!(part, Part::Literal(_)) && parts.last().is_some_and(|p| !matches!(p, Part::Literal(_))) {
                return None;
            }
            parts.push(part);
        }
        let all = [Part::Year, Part::Month, Part::Day, Part::Hour, Part::Minute].iter().all(|p| parts.contains(p));
        all.then_some(parts)
    }

    /// The date and time `value` gives, if it matches (date-only patterns give midnight).
    fn parse(&self, value: &str) -> Option<chrono::format::Parsed> {
        let mut parsed = chrono::format::Parsed::new();
        chrono::format::parse(&mut parsed, value, self.items.iter()).ok()?;
        Some(parsed)
    }

    /// The naive date and time `value` gives, if it matches: by the fast form when the pattern
    /// has one and `value` is in its plain shape (no white space around numbers, one space where
    /// the pattern has one), otherwise by chrono, so the two never disagree on what is valid.
    fn datetime(&self, value: &str) -> Option<chrono::NaiveDateTime> {
        if let Some(t) = self.fast.as_deref().and_then(|parts| Self::read_fast(parts, value.as_bytes())) {
            return Some(t);
        }
        self.parse(value).and_then(|parsed| parsed.to_naive_datetime_with_offset(0).ok())
    }

    fn read_fast(parts: &[Part], value: &[u8]) -> Option<chrono::NaiveDateTime> {
        /// The number of `min..=max` digits at `value[*i..]`, moving `i` past them.
        fn digits(value: &[u8], i: &mut usize, min: usize, max: usize) -> Option<u32> {
            let start = *i;
            let mut n = 0u32;
            while *i < value.len() && *i - start < max && value[*i].is_ascii_digit() {
                n = n * 10 + u32::from(value[*i] - b'0');
                *i += 1;
            }
            (*i - start >= min).then_some(n)
        }
        let (mut y, mut mo, mut d, mut h, mut mi, mut sec) = (0u32, 0, 0, 0, 0, 0);
        let mut i = 0;
        for part in parts {
            match part {
                Part::Year => y = digits(value, &mut i, 4, 4)?,
                Part::Month => mo = digits(value, &mut i, 1, 2)?,
                Part::Day => d = digits(value, &mut i, 1, 2)?,
                Part::Hour => h = digits(value, &mut i, 1, 2)?,
                Part::Minute => mi = digits(value, &mut i, 1, 2)?,
                Part::Second => sec = digits(value, &mut i, 1, 2)?,
                Part::Literal(b) => {
                    if value.get(i) != Some(b) {
                        return None;
                    }
                    i += 1;
                }
            }
        }
        if i != value.len() {
            return None;
        }
        NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, d)?.and_hms_opt(h, mi, sec)
    }
}

/// Where the event time comes from, as slot indexes.
#[derive(Debug)]
enum EventSpec {
    Field(usize),
    Parts { year: usize, month: usize, day: usize, hour: usize, offset: FixedOffset },
}

/// Keyword categorisation compiled for lookups: lower-case keywords grouped by byte length, so
/// most words of a text are dismissed by their length alone and the rest by a few comparisons.
#[derive(Debug)]
struct Categorizer {
    inputs: Vec<usize>,
    /// `by_len[n]`: the lower-case keywords of `n` bytes (UTF-8) with their rule index (first
    /// rule wins).
    by_len: Vec<Vec<(Box<[u8]>, usize)>>,
    /// `short[n]`: the keywords of `n` <= 8 bytes packed into an integer ([`pack_lower`]) with
    /// their rule index: most words are this short, and are then matched without copying or
    /// comparing bytes.
    short: [Vec<(u64, usize)>; 9],
    categories: Vec<String>,
    default: String,
}

/// Whether an ASCII byte belongs to a word (a letter or digit): one load per byte where
/// `u8::is_ascii_alphanumeric` is three range checks.
static WORD_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    table
};

/// A word of at most 8 bytes, ASCII-lower-cased, as a little-endian integer padded with zero
/// bytes (two words of the same length are equal exactly when their packings are).
fn pack_lower(word: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..word.len()].copy_from_slice(word);
    bytes.make_ascii_lowercase();
    u64::from_le_bytes(bytes)
}

impl Categorizer {
    fn new(rules: &[crate::config::stream::CategoryRule], inputs: Vec<usize>, default: String) -> Self {
        let mut by_len: Vec<Vec<(Box<[u8]>, usize)>> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            for keyword in &rule.keywords {
                let keyword = keyword.to_lowercase();
                if by_len.len() <= keyword.len() {
                    by_len.resize_with(keyword.len() + 1, Vec::new);
                }
                let bucket = &mut by_len[keyword.len()];
                if !bucket.iter().any(|(k, _)| **k == *keyword.as_bytes()) {
                    bucket.push((keyword.into_bytes().into_boxed_slice(), i));
                }
            }
        }
        let mut short: [Vec<(u64, usize)>; 9] = Default::default();
        for (len, bucket) in by_len.iter().enumerate().take(short.len()) {
            short[len] = bucket.iter().map(|(k, rule)| (pack_lower(k), *rule)).collect();
        }
        Self { inputs, by_len, short, categories: rules.iter().map(|r| r.category.clone()).collect(), default }
    }

    /// The rule of lower-case `word`, if it is a keyword.
    fn rule_of(&self, word: &[u8]) -> Option<usize> {
        self.by_len.get(word.len())?.iter().find(|(k, _)| **k == *word).map(|&(_, rule)| rule)
    }

    /// Whether some keyword has `len` bytes.
    fn has_len(&self, len: usize) -> bool {
        self.by_len.get(len).is_some_and(|bucket| !bucket.is_empty())
    }

    /// The category of the first rule (in priority order) one of whose keywords occurs as a
    /// whole word, case-insensitively, in the input texts. Words are the runs of letters and
    /// digits (Unicode); ASCII texts take a byte-wise path.
    fn categorize<'c, 't>(&'c self, texts: impl IntoIterator<Item = &'t str>) -> &'c str {
        let mut best = usize::MAX;
        let mut lower: Vec<u8> = Vec::new();
        let mut word = String::new();
        for text in texts {
            let mut note = |rule: Option<usize>| {
                if let Some(rule) = rule {
                    best = best.min(rule);
                }
                best == 0
            };
            if text.is_ascii() {
                for token in text.as_bytes().split(|&b| !WORD_BYTE[usize::from(b)]) {
                    // Lower-casing ASCII keeps the length: words no keyword is as long as are skipped.
                    let rule = if let Some(bucket) = self.short.get(token.len()) {
                        if bucket.is_empty() {
                            continue;
                        }
                        let packed = pack_lower(token);
                        bucket.iter().find(|(k, _)| *k == packed).map(|&(_, rule)| rule)
                    } else if self.has_len(token.len()) {
                        lower.clear();
                        lower.extend_from_slice(token);
                        lower.make_ascii_lowercase();
                        self.rule_of(&lower)
                    } else {
                        continue;
                    };
                    if note(rule) {
                        return &self.categories[0];
                    }
                }
            } else {
                for token in text.split(|c: char| !c.is_alphanumeric()) {
                    word.clear();
                    word.extend(token.chars().flat_map(char::to_lowercase));
                    if note(self.rule_of(word.as_bytes())) {
                        return &self.categories[0];
                    }
                }
            }
        }
        self.categories.get(best).map_or(self.default.as_str(), String::as_str)
    }
}

fn parse_offset(text: Option<&str>) -> FixedOffset {
    let text = text.unwrap_or("+00:00");
    let sign = if text.starts_with('-') { -1 } else { 1 };
    let hours: i32 = text.get(1..3).and_then(|h| h.parse().ok()).unwrap_or(0);
    let minutes: i32 = text.get(4..6).and_then(|m| m.parse().ok()).unwrap_or(0);
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).unwrap_or_else(|| chrono::Offset::fix(&Utc))
}

/// The compiled form of one stream's definition: JSON key lookup, typing rules, event time,
/// categorisation and the Arrow schema (the stream's columns, in order).
#[derive(Debug)]
pub struct Codec {
    stream: Arc<Stream>,
    /// JSON key of each field, in field order.
    keys: Vec<Box<str>>,
    /// `sorted_next[slot]`: the slot whose key follows `slot`'s in byte order (`keys.len()`
    /// after the last); `sorted_next[keys.len()]`: the first. See [`RecordSeed`].
    sorted_next: Vec<usize>,
    fields: Vec<FieldSpec>,
    event: EventSpec,
    categorizer: Option<Categorizer>,
    /// The rows' Arrow and Parquet schemas, shared by every [`Rows`] of the stream.
    layout: Arc<Layout>,
}

impl Codec {
    /// Compiles `stream` (already validated by `config`).
    pub fn new(stream: Arc<Stream>) -> Self {
        let fields: Vec<FieldSpec> = stream
            .fields
            .iter()
            .map(|f| FieldSpec {
                source: f.source.clone(),
                field_type: f.field_type,
                nullable: f.nullable,
                null_markers: f.null_markers.clone(),
                format: match f.format.as_deref() {
                    Some("rfc3339") => Format::Rfc3339,
                    Some("uuid") => Format::Uuid,
                    Some(pattern) => Format::Pattern(Pattern::new(pattern), parse_offset(f.utc_offset.as_deref())),
                    None => Format::None,
                },
                allowed: f.allowed.clone(),
            })
            .collect();
        let keys: Vec<Box<str>> = stream.fields.iter().map(|f| f.source.clone().into_boxed_str()).collect();
        let index = |name: &str| stream.fields.iter().position(|f| f.name == name).unwrap_or(0);
        let event = match &stream.event_time {
            EventTime::Field(field) => EventSpec::Field(index(field)),
            EventTime::Parts { year, month, day, hour, utc_offset, .. } => EventSpec::Parts {
                year: index(year),
                month: index(month),
                day: index(day),
                hour: index(hour),
                offset: parse_offset(Some(utc_offset)),
            },
        };
        let categorizer = stream.categorize.as_ref().map(|c| {
            Categorizer::new(&c.rules, c.inputs.iter().map(|input| index(input)).collect(), c.default.clone())
        });
        let plain = (stream.fields.iter().zip(&fields))
            .filter(|(_, spec)| matches!(spec.format, Format::Uuid))
            .map(|(f, _)| f.name.clone())
            .collect();
        let layout = Arc::new(Layout::new(Arc::new(arrow_schema(&stream)), plain));
        let mut sorted: Vec<usize> = (0..keys.len()).collect();
        sorted.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let mut sorted_next = vec![keys.len(); keys.len() + 1];
        let mut before = keys.len();
        for &slot in &sorted {
            sorted_next[before] = slot;
            before = slot;
        }
        Self { stream, keys, sorted_next, fields, event, categorizer, layout }
    }

    /// Empty rows of this stream, its UUID columns written without a dictionary.
    pub fn rows(&self) -> Rows {
        Rows::with_layout(self.layout.clone(), INITIAL_ROWS, None)
    }

    /// The encoder of this stream's batches.
    pub fn encoder(&self) -> Encoder {
        Encoder { layout: self.layout.clone() }
    }

    /// Empty rows with room for `rows` rows, each text column with room for as many value
    /// bytes as the same column of `previous` (a finished chunk of this stream) holds, and a
    /// sixteenth more. Builders grow by doubling and a finished chunk keeps its builders'
    /// capacity: at 16 bytes a row to start with, a chunk of 8,192 generated tickets held
    /// about 1.9 MiB of text buffers for 1.1 MiB of text (from the text columns' mean lengths
    /// over 20,000 tickets), and the memory budget counts what is allocated (so the buffers
    /// spilled more often: 14 spills of the 1M tickets in `bench worker`, 10 now).
    pub fn rows_like(&self, rows: usize, previous: &RecordBatch) -> Rows {
        Rows::with_layout(self.layout.clone(), rows, Some(previous))
    }

    /// The stream this codec was compiled from.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The Arrow schema of the stream's rows: [`Stream::columns`] in order, timestamps as
    /// microseconds in UTC, nullable exactly where the definition allows null.
    pub fn schema(&self) -> &SchemaRef {
        &self.layout.arrow
    }

    /// Decodes, validates, types and enriches one payload into `row` (cleared first), a cell
    /// per column before the source columns, which [`Rows::push`] adds. The caller's row is
    /// written in place: a [`Row`] is about 800 bytes inline, and returning one by value copied
    /// it once or twice per record (3% of the tickets' time in `memcpy`).
    ///
    /// `ingested_at` is microseconds since the epoch (UTC). Returns the row's partition index
    /// (the event time's hour, day or month since the epoch, as the stream's granularity says:
    /// [`crate::config::stream::Granularity::index_of_micros`]). Errors: the payload is not a JSON
    /// object, a required field is missing or null, a value has the wrong type, is not allowed,
    /// or does not match its format; `row` then holds part of the row, to be ignored.
    pub fn decode_into<'a>(&'a self, payload: &'a [u8], ingested_at: i64, row: &mut Row<'a>) -> Result<i32, Rejection> {
        row.clear();
        // One UTF-8 check of the whole payload: the parser then skips it for every string
        // (validating each string on its own was 5% of the tickets' time).
        let text = std::str::from_utf8(payload).map_err(|e| Rejection {
            field: None,
            message: format!("not a JSON object: invalid UTF-8 at byte {}", e.valid_up_to()),
        })?;
        let mut slots: smallvec::SmallVec<[Raw<'a>; INLINE_CELLS]> =
            std::iter::repeat_with(|| Raw::Absent).take(self.fields.len()).collect();
        // sonic-rs (SIMD string scanning): 4% fewer instructions than serde_json on the tickets
        // and the incident log (cachegrind), through the same serde visitor.
        let mut deserializer = sonic_rs::Deserializer::from_str(text);
        let not_json = |e: sonic_rs::Error| {
            // The message's first line: what and where (the rest quotes the payload).
            let e = e.to_string();
            Rejection { field: None, message: format!("not a JSON object: {}", e.lines().next().unwrap_or_default()) }
        };
        RecordSeed { keys: &self.keys, sorted_next: &self.sorted_next, slots: &mut slots }
            .deserialize(&mut deserializer)
            .map_err(not_json)?;
        deserializer.end().map_err(not_json)?;

        for (spec, raw) in self.fields.iter().zip(slots.iter_mut()) {
            row.push(type_cell(spec, std::mem::replace(raw, Raw::Absent))?);
        }
        let cells = &*row;
        let event_micros = match &self.event {
            EventSpec::Field(i) => match cells[*i] {
                Cell::Micros(m) => m,
                _ => return Err(reject(&self.fields[*i].source, "event time missing")),
            },
            EventSpec::Parts { year, month, day, hour, offset } => {
                let part = |i: usize| match cells[i] {
                    Cell::I32(v) => i64::from(v),
                    Cell::I64(v) => v,
                    _ => -1,
                };
                let (y, mo, d, h) = (part(*year), part(*month), part(*day), part(*hour));
                let date = i32::try_from(y)
                    .ok()
                    .zip(u32::try_from(mo).ok())
                    .zip(u32::try_from(d).ok())
                    .and_then(|((y, mo), d)| NaiveDate::from_ymd_opt(y, mo, d));
                let time = date.zip(u32::try_from(h).ok()).and_then(|(date, h)| date.and_hms_opt(h, 0, 0));
                match time.and_then(|t| offset.from_local_datetime(&t).single()) {
                    Some(t) => t.timestamp_micros(),
                    None => {
                        return Err(Rejection {
                            field: None,
                            message: format!("year/month/day/hour {y}/{mo}/{d}/{h} is not a valid hour"),
                        });
                    }
                }
            }
        };
        let window = &self.stream.event_window;
        let event_field = || match &self.event {
            EventSpec::Field(i) => Some(self.fields[*i].source.clone()),
            EventSpec::Parts { .. } => None,
        };
        if let Some(not_before) = window.not_before {
            let earliest = not_before.and_hms_opt(0, 0, 0).map_or(i64::MIN, |t| t.and_utc().timestamp_micros());
            if event_micros < earliest {
                return Err(Rejection {
                    field: event_field(),
                    message: format!(
                        "event time {} is before the stream's window (event_time.not_before = {not_before})",
                        micros_text(event_micros)
                    ),
                });
            }
        }
        if let Some(days) = window.max_ahead_days
            && event_micros > ingested_at.saturating_add(i64::from(days) * 86_400_000_000)
        {
            return Err(Rejection {
                field: event_field(),
                message: format!(
                    "event time {} is more than {days} day(s) after its ingestion (event_time.max_ahead_days = {days})",
                    micros_text(event_micros)
                ),
            });
        }
        if matches!(self.event, EventSpec::Parts { .. }) {
            row.push(Cell::Micros(event_micros));
        }
        if let Some(categorizer) = &self.categorizer {
            let texts = categorizer.inputs.iter().filter_map(|&i| match &row[i] {
                Cell::Str(s) => Some(s.as_ref()),
                _ => None,
            });
            let category = categorizer.categorize(texts);
            row.push(Cell::Str(Cow::Borrowed(category)));
        }
        row.push(Cell::Micros(ingested_at));
        Ok(self.stream.granularity.index_of_micros(event_micros))
    }
}

/// Whether `a` and `b` are the same text. Keys, null markers and allowed values are short:
/// compared as one or two overlapping machine words, without a call to `memcmp` (the
/// standard library's comparison calls it for every length: 2% of the tickets' time went
/// into such calls).
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default());
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or_default());
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// `micros` since the epoch as RFC 3339 UTC.
fn micros_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map_or_else(|| micros.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn type_cell<'a>(spec: &FieldSpec, raw: Raw<'a>) -> Result<Cell<'a>, Rejection> {
    let is_null = match &raw {
        Raw::Absent | Raw::Null => true,
        Raw::Str(s) => spec.null_markers.iter().any(|m| same(m, s)),
        _ => false,
    };
    if is_null {
        if spec.nullable {
            return Ok(Cell::Null);
        }
        let message = match raw {
            Raw::Absent => "missing required field".to_owned(),
            Raw::Null => "null in a required field".to_owned(),
            Raw::Str(s) => format!("null marker `{s}` in a required field"),
            _ => "null in a required field".to_owned(),
        };
        return Err(reject(&spec.source, message));
    }
    let wrong =
        |raw: &Raw<'_>| reject(&spec.source, format!("expected {}, got {}", spec.field_type.as_str(), raw.describe()));
    let cell = match spec.field_type {
        FieldType::String => match raw {
            Raw::Str(s) => {
                if matches!(spec.format, Format::Uuid) && uuid::Uuid::try_parse(&s).is_err() {
                    return Err(reject(&spec.source, format!("`{}` is not a UUID", clip(&s))));
                }
                if !spec.allowed.is_empty() && !spec.allowed.iter().any(|a| same(a, &s)) {
                    return Err(reject(
                        &spec.source,
                        format!("`{}` is not one of {}", clip(&s), spec.allowed.join(", ")),
                    ));
                }
                Cell::Str(s)
            }
            other => return Err(wrong(&other)),
        },
        FieldType::Int | FieldType::Bigint => {
            let value: i64 = match &raw {
                Raw::Int(v) => *v,
                Raw::UInt(v) => i64::try_from(*v).map_err(|_| reject(&spec.source, format!("{v} is out of range")))?,
                Raw::Str(s) => {
                    trim(s).parse().map_err(|_| reject(&spec.source, format!("`{}` is not an integer", clip(s))))?
                }
                other => return Err(wrong(other)),
            };
            if spec.field_type == FieldType::Int {
                Cell::I32(
                    i32::try_from(value)
                        .map_err(|_| reject(&spec.source, format!("{value} is out of range for int")))?,
                )
            } else {
                Cell::I64(value)
            }
        }
        FieldType::Double => match &raw {
            Raw::Float(v) => Cell::F64(*v),
            Raw::Int(v) => Cell::F64(*v as f64),
            Raw::UInt(v) => Cell::F64(*v as f64),
            Raw::Str(s) => match parse_f64(trim(s)) {
                Some(v) if v.is_finite() => Cell::F64(v),
                _ => return Err(reject(&spec.source, format!("`{}` is not a number", clip(s)))),
            },
            other => return Err(wrong(other)),
        },
        FieldType::Boolean => match &raw {
            Raw::Bool(v) => Cell::Bool(*v),
            Raw::Str(s) if s.eq_ignore_ascii_case("true") => Cell::Bool(true),
            Raw::Str(s) if s.eq_ignore_ascii_case("false") => Cell::Bool(false),
            Raw::Str(s) => return Err(reject(&spec.source, format!("`{}` is not true or false", clip(s)))),
            other => return Err(wrong(other)),
        },
        FieldType::Timestamp => match &raw {
            Raw::Str(s) => Cell::Micros(parse_timestamp(&spec.format, s).map_err(|m| reject(&spec.source, m))?),
            other => return Err(wrong(other)),
        },
        FieldType::Date => match &raw {
            Raw::Str(s) => {
                let date = match &spec.format {
                    Format::Pattern(p, _) => p.parse(s).and_then(|parsed| parsed.to_naive_date().ok()),
                    _ => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
                };
                let date = date.ok_or_else(|| {
                    let pattern = match &spec.format {
                        Format::Pattern(p, _) => p.text.as_str(),
                        _ => "%Y-%m-%d",
                    };
                    reject(&spec.source, format!("`{}` does not match `{pattern}`", clip(s)))
                })?;
                Cell::Days(date.num_days_from_ce() - EPOCH_DAYS_FROM_CE)
            }
            other => return Err(wrong(other)),
        },
    };
    Ok(cell)
}

/// `text` without leading and trailing white space ([`str::trim`]), checking its first and last
/// bytes first: numbers from CSV replays rarely have any (a Unicode-aware trim of every value was
/// 2% of the Beijing replay's instructions).
fn trim(text: &str) -> &str {
    let plain = |b: u8| b.is_ascii() && !b.is_ascii_whitespace() && b != 0x0b;
    match text.as_bytes() {
        [first, .., last] if plain(*first) && plain(*last) => text,
        [only] if plain(*only) => text,
        _ => text.trim(),
    }
}

/// `text` as the nearest f64, as `str::parse` reads it (None where it fails). A plain decimal
/// (`-`, then at most 15 digits with at most one `.` between two of them: what sensors
/// send, such as `-18.8` or `1023`) is its digits as an integer divided by a power of ten:
/// both exact in an f64, and IEEE division rounds correctly, so the result is the same as
/// the standard library's. Its general parser was 5% of the Beijing replay's time.
fn parse_f64(text: &str) -> Option<f64> {
    const POWERS: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    let (mut mantissa, mut count, mut point) = (0u64, 0usize, None);
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
            }
            b'.' if point.is_none() && i > 0 && i + 1 < digits.len() => point = Some(i),
            _ => return text.parse().ok(),
        }
        if count > 15 {
            return text.parse().ok();
        }
    }
    if count == 0 {
        return text.parse().ok();
    }
    let scale = point.map_or(0, |p| digits.len() - 1 - p);
    let value = mantissa as f64 / POWERS[scale];
    Some(if negative { -value } else { value })
}

fn parse_timestamp(format: &Format, text: &str) -> Result<i64, String> {
    match format {
        Format::Pattern(pattern, offset) => pattern
            .datetime(text)
            .and_then(|t| offset.from_local_datetime(&t).single())
            .map(|t| t.timestamp_micros())
            .ok_or_else(|| format!("`{}` does not match `{}`", clip(text), pattern.text)),
        _ => DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_micros())
            .map_err(|_| format!("`{}` is not an RFC 3339 timestamp", clip(text))),
    }
}

/// At most 60 characters of an input value, for messages.
fn clip(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(60) {
        Some((end, _)) => Cow::Owned(format!("{}...", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// The Arrow schema of `stream`'s columns.
pub fn arrow_schema(stream: &Stream) -> Schema {
    let nullable = |name: &str| stream.fields.iter().find(|f| f.name == name).is_some_and(|f| f.nullable);
    let fields: Vec<ArrowField> = stream
        .columns()
        .into_iter()
        .map(|(name, ty)| {
            let data_type = arrow_type(ty);
            let nullable = nullable(&name);
            ArrowField::new(name, data_type, nullable)
        })
        .collect();
    Schema::new(fields)
}

/// The Arrow type of a column of Glue type `ty` (timestamps: microseconds, UTC).
pub fn arrow_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::String => DataType::Utf8,
        FieldType::Int => DataType::Int32,
        FieldType::Bigint => DataType::Int64,
        FieldType::Double => DataType::Float64,
        FieldType::Boolean => DataType::Boolean,
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldType::Date => DataType::Date32,
    }
}

/// Rows each column builder first makes room for.
const INITIAL_ROWS: usize = 16;

/// One column being built.
enum Column {
    Str(StringBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Micros(TimestampMicrosecondBuilder),
    Days(Date32Builder),
}

/// What every file of one stream shares, computed once per stream rather than once per file
/// (a replay of history writes thousands of small files): the Arrow schema, the Parquet schema
/// converted from it, the footer entry that records the Arrow schema for readers
/// ([`parquet::arrow::ARROW_SCHEMA_META_KEY`], as `ArrowWriter` writes it), and the columns
/// written without a dictionary; and the column writer factories of the writer settings its
/// row groups have needed so far.
#[derive(Debug)]
struct Layout {
    arrow: SchemaRef,
    parquet: parquet::schema::types::SchemaDescPtr,
    arrow_schema_entry: parquet::file::metadata::KeyValue,
    /// Columns written without a dictionary: values unique per row (UUIDs), whose dictionary
    /// would be built, found as large as the data, and dropped.
    plain: Vec<String>,
    /// The lake files' settings ([`writer_properties`]).
    file_properties: Arc<WriterProperties>,
    /// Column writer factories by [`Shape`] (the settings [`writer_properties_for`] derives
    /// from it): building the settings, a file writer and a factory for every row group was 4%
    /// of a replay that writes thousands of small files, whose groups mostly share one shape.
    factories: std::sync::Mutex<std::collections::HashMap<Shape, Arc<Factory>>>,
}

/// What [`writer_properties_for`] needs to know of a batch: whether each column fits one data
/// page, whether it has fewer than [`DICTIONARY_FROM_ROWS`] rows, and which columns reach
/// [`COMPRESS_FROM_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shape {
    one_page: bool,
    small: bool,
    compressed: Vec<bool>,
}

impl Shape {
    /// `batch`'s shape, each column measured once ([`column_bytes`]). A column fits one data
    /// page under the writer's default limits: 20,000 rows, and 1 MiB estimated by its Arrow
    /// bytes (more than its encoded size).
    fn of(batch: &RecordBatch) -> Self {
        use parquet::file::properties::{DEFAULT_DATA_PAGE_ROW_COUNT_LIMIT, DEFAULT_PAGE_SIZE};
        let bytes: Vec<usize> = batch.columns().iter().map(|c| column_bytes(c.as_ref())).collect();
        Self {
            one_page: batch.num_rows() <= DEFAULT_DATA_PAGE_ROW_COUNT_LIMIT
                && bytes.iter().all(|&b| b < DEFAULT_PAGE_SIZE),
            small: batch.num_rows() < DICTIONARY_FROM_ROWS,
            compressed: bytes.iter().map(|&b| b >= COMPRESS_FROM_BYTES).collect(),
        }
    }
}

/// Parquet's column writer factory (which holds the writer settings), shown by name only.
struct Factory(parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory);

impl fmt::Debug for Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArrowRowGroupWriterFactory")
    }
}

/// Shapes a stream's factory cache holds before it starts again (a stream's row groups take a
/// few: their compressed columns vary with their sizes).
const MAX_SHAPES: usize = 64;

impl Layout {
    fn new(arrow: SchemaRef, plain: Vec<String>) -> Self {
        // The codec's schemas are flat columns of primitive types, which always convert.
        let parquet = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&arrow)
            .expect("a stream's Arrow schema converts to Parquet");
        let arrow_schema_entry = parquet::file::metadata::KeyValue::new(
            parquet::arrow::ARROW_SCHEMA_META_KEY.to_owned(),
            parquet::arrow::encode_arrow_schema(&arrow),
        );
        Self {
            arrow,
            parquet: Arc::new(parquet),
            arrow_schema_entry,
            plain,
            file_properties: Arc::new(writer_properties()),
            factories: Default::default(),
        }
    }

    /// The column writer factory for `batch`'s [`Shape`], made once per shape.
    ///
    /// Errors: Parquet refused the settings (not expected: they are the writer's own).
    fn factory(&self, batch: &RecordBatch) -> anyhow::Result<Arc<Factory>> {
        use parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory;
        use parquet::file::writer::SerializedFileWriter;

        let shape = Shape::of(batch);
        let mut factories = self.factories.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(factory) = factories.get(&shape) {
            return Ok(factory.clone());
        }
        let properties = Arc::new(writer_properties_for(&shape, &self.arrow, &self.plain));
        // The factory takes its settings from a file writer; this one writes nowhere (the
        // chunks are spliced into a file by `write_file`).
        let settings = SerializedFileWriter::new(std::io::sink(), self.parquet.root_schema_ptr(), properties)?;
        let factory = Arc::new(Factory(ArrowRowGroupWriterFactory::try_new(&settings, self.arrow.clone())?));
        if factories.len() >= MAX_SHAPES {
            factories.clear();
        }
        factories.insert(shape, factory.clone());
        Ok(factory)
    }
}

/// Rows of one stream being collected into Arrow columns (one open file's worth).
pub struct Rows {
    layout: Arc<Layout>,
    columns: Vec<Column>,
    len: usize,
    /// Payload bytes these rows came from (uncompressed JSON).
    bytes: usize,
}

impl Rows {
    /// Empty columns for `schema`, every column dictionary-encoded where the writer finds it
    /// pays ([`Codec::rows`] gives a stream's rows, its UUID columns without a dictionary).
    pub fn new(schema: SchemaRef) -> Self {
        Self::with_layout(Arc::new(Layout::new(schema, Vec::new())), INITIAL_ROWS, None)
    }

    /// Builders for `capacity` rows; text columns with room for 16 bytes a row, or for the
    /// value bytes of the same column of `previous` and a sixteenth more.
    fn with_layout(layout: Arc<Layout>, capacity: usize, previous: Option<&RecordBatch>) -> Self {
        use arrow_array::cast::AsArray as _;
        let text_bytes = |i: usize| {
            previous.and_then(|batch| batch.columns().get(i)).and_then(|column| column.as_string_opt::<i32>()).map_or(
                16 * capacity,
                |strings| {
                    let bytes = strings.values().len();
                    bytes + bytes / 16
                },
            )
        };
        let columns = layout
            .arrow
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| match f.data_type() {
                DataType::Utf8 => Column::Str(StringBuilder::with_capacity(capacity, text_bytes(i))),
                DataType::Int32 => Column::I32(Int32Builder::with_capacity(capacity)),
                DataType::Int64 => Column::I64(Int64Builder::with_capacity(capacity)),
                DataType::Float64 => Column::F64(Float64Builder::with_capacity(capacity)),
                DataType::Boolean => Column::Bool(BooleanBuilder::with_capacity(capacity)),
                DataType::Date32 => Column::Days(Date32Builder::with_capacity(capacity)),
                _ => Column::Micros(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC")),
            })
            .collect();
        Self { layout, columns, len: 0, bytes: 0 }
    }

    /// Appends one row from [`Codec::decode_into`], read from topic partition `partition` at
    /// `offset` (the last two columns, [`crate::config::stream::SOURCE_COLUMNS`]);
    /// `payload_bytes` counts toward [`Rows::bytes`].
    pub fn push(&mut self, row: &[Cell<'_>], payload_bytes: usize, partition: i32, offset: i64) {
        let own = self.columns.len() - 2;
        if let Column::I32(b) = &mut self.columns[own] {
            b.append_value(partition);
        }
        if let Column::I64(b) = &mut self.columns[own + 1] {
            b.append_value(offset);
        }
        for (column, cell) in self.columns[..own].iter_mut().zip(row) {
            match (column, cell) {
                (Column::Str(b), Cell::Str(v)) => b.append_value(v.as_ref()),
                (Column::Str(b), _) => b.append_null(),
                (Column::I32(b), Cell::I32(v)) => b.append_value(*v),
                (Column::I32(b), _) => b.append_null(),
                (Column::I64(b), Cell::I64(v)) => b.append_value(*v),
                (Column::I64(b), _) => b.append_null(),
                (Column::F64(b), Cell::F64(v)) => b.append_value(*v),
                (Column::F64(b), _) => b.append_null(),
                (Column::Bool(b), Cell::Bool(v)) => b.append_value(*v),
                (Column::Bool(b), _) => b.append_null(),
                (Column::Micros(b), Cell::Micros(v)) => b.append_value(*v),
                (Column::Micros(b), _) => b.append_null(),
                (Column::Days(b), Cell::Days(v)) => b.append_value(*v),
                (Column::Days(b), _) => b.append_null(),
            }
        }
        self.len += 1;
        self.bytes += payload_bytes;
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Payload bytes (uncompressed JSON) of the rows.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes the column builders hold allocated (Arrow grows its buffers by doubling: the
    /// variable-length parts are counted at the next power of two of what they hold), plus a
    /// fixed cost per column.
    pub fn memory(&self) -> usize {
        const PER_COLUMN: usize = 256;
        let grown = |bytes: usize| bytes.next_power_of_two();
        self.columns
            .iter()
            .map(|c| {
                PER_COLUMN
                    + match c {
                        Column::Str(b) => grown(b.values_slice().len()) + grown(4 * b.offsets_slice().len()),
                        Column::I32(b) => 4 * b.capacity(),
                        Column::I64(b) => 8 * b.capacity(),
                        Column::F64(b) => 8 * b.capacity(),
                        Column::Bool(b) => b.capacity() / 8 + 1,
                        Column::Micros(b) => 8 * b.capacity(),
                        Column::Days(b) => 4 * b.capacity(),
                    }
            })
            .sum()
    }

    /// The rows as one record batch; the builders are emptied.
    ///
    /// Errors: never for rows pushed through [`Rows::push`] (kept as an error, not a panic).
    pub fn finish(&mut self) -> anyhow::Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Str(b) => Arc::new(b.finish()),
                    Column::I32(b) => Arc::new(b.finish()),
                    Column::I64(b) => Arc::new(b.finish()),
                    Column::F64(b) => Arc::new(b.finish()),
                    Column::Bool(b) => Arc::new(b.finish()),
                    Column::Micros(b) => Arc::new(b.finish()),
                    Column::Days(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.len = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(self.layout.arrow.clone(), arrays)?)
    }
}

/// Parquet writer settings of every lake file: zstd (level 1: faster than 3 and, on these
/// pages, no larger), statistics, `created_by` indutech;
/// the offset column, unique per row, is written plain (a dictionary would only be built to be
/// dropped).
pub fn writer_properties() -> WriterProperties {
    writer_properties_builder().build()
}

fn writer_properties_builder() -> parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_column_dictionary_enabled(ColumnPath::from(crate::config::stream::OFFSET_COLUMN), false)
        .set_created_by(format!("indutech {}", env!("CARGO_PKG_VERSION")))
}

/// A column whose Arrow data is smaller than this many bytes is written uncompressed.
///
/// The Parquet writer creates a zstd compression context for every compressed column of every
/// file (60.1 also created a decompression context for each, which only readers use; 60.2
/// makes both on first use: 8% more tickets a second), and creating one executes CPUID, which
/// traps to the hypervisor on a virtual machine (about 30 µs each, measured with perf: a third
/// of the time of a replay that writes many small files). Compressing 32 KiB at zstd's few
/// hundred MB/s takes about as long, and saves at most those 32 KiB, so smaller columns (a file
/// of a few hundred rows; measured by `column_bytes`) are stored plain. Every Parquet reader
/// reads uncompressed column chunks.
pub const COMPRESS_FROM_BYTES: usize = 32 * 1024;

/// Row groups of fewer rows are written without dictionaries for their numbers and times
/// (strings keep theirs).
///
/// The Parquet writer (parquet 60) gives each dictionary a hash table of 4,096 slots, allocated
/// and cleared per column chunk: for the tiny groups of a replay of history (a day of a few
/// stations, tens of rows) that was a fifth of the instructions (cachegrind), while such a chunk,
/// stored plain, is a few hundred bytes.
pub const DICTIONARY_FROM_ROWS: usize = 256;

/// [`writer_properties`] for batches of `shape` (of `schema`): their columns under
/// [`COMPRESS_FROM_BYTES`] uncompressed, the `plain` columns without a dictionary, and under
/// [`DICTIONARY_FROM_ROWS`] rows every column but the strings without one.
fn writer_properties_for(shape: &Shape, schema: &Schema, plain: &[String]) -> WriterProperties {
    let mut builder = writer_properties_builder();
    if shape.one_page {
        // One data page per column: the page index (a column index and an offset index per
        // column) would repeat the column chunk's statistics and location, at a cost that
        // counts when a replay of history writes thousands of small files.
        builder = builder
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
            .set_offset_index_disabled(true);
    }
    for name in plain {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(name.as_str()), false);
    }
    if shape.small {
        for field in schema.fields() {
            if field.data_type() != &DataType::Utf8 {
                builder = builder.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
            }
        }
    }
    for (field, compressed) in schema.fields().iter().zip(&shape.compressed) {
        if !compressed {
            builder =
                builder.set_column_compression(ColumnPath::from(field.name().as_str()), Compression::UNCOMPRESSED);
        }
    }
    builder.build()
}

/// Arrow bytes of `column`'s own rows (values, offsets, validity), what a copy of exactly these
/// rows would hold: a slice of a buffer's chunk ([`Encoder::gather`]) counts its rows only, not
/// the chunk under it, nor spare capacity.
fn column_bytes(column: &dyn arrow_array::Array) -> usize {
    use arrow_array::cast::AsArray as _;
    let validity = column.nulls().map_or(0, |n| n.len().div_ceil(8));
    let values = if let Some(strings) = column.as_string_opt::<i32>() {
        let offsets = strings.value_offsets();
        let text = offsets.last().zip(offsets.first()).map_or(0, |(last, first)| last - first);
        usize::try_from(text).unwrap_or(0) + std::mem::size_of_val(offsets)
    } else if column.data_type() == &DataType::Boolean {
        column.len().div_ceil(8)
    } else {
        column.len() * column.data_type().primitive_width().unwrap_or(8)
    };
    validity + values
}

/// Key of the Parquet footer metadata naming the rows' source: `<topic>/<partition>`.
pub const SOURCE_KEY: &str = "indutech.source";

/// One row group of a stream's rows, encoded (pages compressed, statistics and page index
/// computed) but in no file yet, on its way into one ([`Encoder::write`], [`Encoder::spill`]).
/// Never kept: its chunks' bookkeeping (about 43 KB for the 20 columns of a sensor reading,
/// however few rows, measured with a counting allocator) is many times a small group's encoded
/// bytes, and each page sits in a buffer of its estimated size; spills keep compact fragments.
struct RowGroup {
    /// One encoded chunk per column, in schema order.
    chunks: Vec<parquet::arrow::arrow_writer::ArrowColumnChunk>,
    /// Encoded bytes of the chunks (page headers included).
    bytes: usize,
}

impl RowGroup {
    /// Whether every chunk has a page index (a column index and an offset index).
    fn indexed(&self) -> bool {
        self.chunks.iter().all(|c| c.close().offset_index.is_some())
    }
}

/// Encodes `batch` (rows of the stream whose [`Layout`] this is) into one row group (zstd;
/// small columns plain, [`COMPRESS_FROM_BYTES`]; UUID columns without a dictionary; one-page
/// columns without a page index). The stream's schemas come from its layout, converted once.
fn encode_row_group(layout: &Layout, batch: &RecordBatch) -> anyhow::Result<RowGroup> {
    use parquet::arrow::arrow_writer::compute_leaves;

    let mut writers = layout.factory(batch)?.0.create_column_writers(0)?;
    let mut next = writers.iter_mut();
    for (field, column) in layout.arrow.fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, column)? {
            next.next().ok_or_else(|| anyhow::anyhow!("more Parquet leaves than columns (a bug)"))?.write(&leaf)?;
        }
    }
    let chunks = writers.into_iter().map(|w| w.close()).collect::<Result<Vec<_>, _>>()?;
    let bytes = chunks.iter().map(|c| usize::try_from(c.close().bytes_written).unwrap_or(usize::MAX)).sum();
    Ok(RowGroup { chunks, bytes })
}

/// Rows a spill encoded, kept in memory until [`Encoder::write`] copies their row group into the
/// value's file: a Parquet file of one row group with no key-value metadata, compressed as a
/// whole with zstd when it has fewer than [`DICTIONARY_FROM_ROWS`] rows.
///
/// The small groups of a replay of history store their columns uncompressed
/// ([`COMPRESS_FROM_BYTES`]) and without dictionaries ([`DICTIONARY_FROM_ROWS`]), so such a
/// fragment is about as large as the Arrow rows it replaces and a spill would reclaim little;
/// compressing it whole takes one zstd context per thread, not one per column, and makes it
/// about a sixth of their Arrow memory (the Beijing replay by day: 16.9 MB of open rows became
/// 2.9 MB of fragments).
#[derive(Clone)]
pub struct Fragment {
    /// The Parquet file, zstd-compressed when `parquet_len` is not its length.
    body: Vec<u8>,
    /// Length of the Parquet file, bytes.
    parquet_len: usize,
}

impl Fragment {
    /// Memory the fragment holds, bytes (compressed when it is).
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether it holds no bytes (never, for a fragment from [`Encoder::spill`]).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The Parquet file.
    ///
    /// Errors: the zstd frame does not decompress to `parquet_len` bytes (a bug).
    fn parquet(self) -> anyhow::Result<bytes::Bytes> {
        if self.body.len() == self.parquet_len {
            return Ok(bytes::Bytes::from(self.body));
        }
        let parquet = FRAGMENT_ZSTD.with_borrow_mut(|zstd| -> std::io::Result<Vec<u8>> {
            let decompressor = match &mut zstd.1 {
                Some(d) => d,
                none => none.insert(zstd::bulk::Decompressor::new()?),
            };
            decompressor.decompress(&self.body, self.parquet_len)
        })?;
        anyhow::ensure!(
            parquet.len() == self.parquet_len,
            "a spilled fragment decompressed to the wrong length (a bug)"
        );
        Ok(bytes::Bytes::from(parquet))
    }
}

thread_local! {
    /// Each thread's zstd contexts for [`Fragment`]s (creating a context costs a CPUID trap on
    /// a VM, [`COMPRESS_FROM_BYTES`]).
    static FRAGMENT_ZSTD: std::cell::RefCell<(Option<zstd::bulk::Compressor<'static>>, Option<zstd::bulk::Decompressor<'static>>)> =
        const { std::cell::RefCell::new((None, None)) };
}

/// Encodes record batches of one stream (built by its [`Rows`]) into Parquet: spilled
/// [`Fragment`]s and lake files. Cheap to clone (it shares the stream's schemas).
#[derive(Clone)]
pub struct Encoder {
    layout: Arc<Layout>,
}

impl Encoder {
    /// Gathers rows of `chunks` (batches from [`Rows::finish`] of this stream) into one batch:
    /// `picks` are (chunk, row) pairs, in the order the rows are wanted. Consecutive rows of one
    /// chunk are a slice of it (no copy: a buffer of one `dt`, or a stream in event-time order,
    /// whose `dt`s follow one another); other picks are copied out.
    ///
    /// Errors: chunks of another schema (a bug). Panics on a pick outside the chunks (a bug;
    /// arrow-select's `interleave` indexes without a check of its own).
    pub fn gather(&self, chunks: &[RecordBatch], picks: &[(usize, usize)]) -> anyhow::Result<RecordBatch> {
        if let Some(&(chunk, first)) = picks.first()
            && let Some(batch) = chunks.get(chunk)
            && first + picks.len() <= batch.num_rows()
            && picks.windows(2).all(|w| w[1] == (w[0].0, w[0].1 + 1))
        {
            return Ok(batch.slice(first, picks.len()));
        }
        let columns = (0..self.layout.arrow.fields().len())
            .map(|column| {
                let arrays: Vec<&dyn arrow_array::Array> = chunks.iter().map(|c| c.column(column).as_ref()).collect();
                arrow_select::interleave::interleave(&arrays, picks)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.layout.arrow.clone(), columns)?)
    }

    /// Encodes `batch` as a [`Fragment`].
    ///
    /// Errors: Arrow or Parquet encoding errors (not expected for rows built by [`Rows::push`]),
    /// or zstd failed to compress.
    pub fn spill(&self, batch: &RecordBatch) -> anyhow::Result<Fragment> {
        let small = batch.num_rows() < DICTIONARY_FROM_ROWS;
        let group = encode_row_group(&self.layout, batch)?;
        let parquet = write_file(&self.layout, Vec::new(), Some(group), &[])?;
        let parquet_len = parquet.len();
        if !small {
            // Dictionaries and zstd pages already: compressing it again costs more than it saves
            // (a tenth more instructions on the tickets, which spill groups of some 1,000 rows).
            return Ok(Fragment { body: parquet, parquet_len });
        }
        let body = FRAGMENT_ZSTD.with_borrow_mut(|zstd| -> std::io::Result<Vec<u8>> {
            let compressor = match &mut zstd.0 {
                Some(c) => c,
                none => none.insert(zstd::bulk::Compressor::new(1)?),
            };
            compressor.compress(&parquet)
        })?;
        // Kept as is when compressing does not pay (a frame never has the Parquet file's length
        // by chance: it is then not smaller).
        Ok(if body.len() < parquet_len {
            Fragment { body, parquet_len }
        } else {
            Fragment { body: parquet, parquet_len }
        })
    }

    /// One Parquet file of `spilled` (fragments from [`Encoder::spill`], in order) and then
    /// `last` (encoded into the last row group; None only with fragments), the fragments' pages
    /// copied as encoded. The footer records the Arrow schema (readers restore the UTC
    /// timestamps from it) and names the source (`source`, such as `client_tickets/2`, under
    /// [`SOURCE_KEY`]); each row's partition and offset are columns. A page index is written
    /// for every row group or for none (readers that use one expect it throughout; one-page
    /// groups are encoded without one, `Shape::of`).
    ///
    /// Errors: a fragment is not a Parquet file of this stream's schema (a bug), or Arrow or
    /// Parquet encoding errors.
    pub fn write(&self, last: Option<&RecordBatch>, spilled: Vec<Fragment>, source: &str) -> anyhow::Result<Vec<u8>> {
        let last = last.map(|batch| encode_row_group(&self.layout, batch)).transpose()?;
        let entries = [
            self.layout.arrow_schema_entry.clone(),
            parquet::file::metadata::KeyValue::new(SOURCE_KEY.to_owned(), source.to_owned()),
        ];
        write_file(&self.layout, spilled, last, &entries)
    }
}

/// `rows` (emptied) as a [`Fragment`] ([`Encoder::spill`]). Tests only.
#[cfg(test)]
fn spill_parquet(rows: &mut Rows) -> anyhow::Result<Fragment> {
    let batch = rows.finish()?;
    Encoder { layout: rows.layout.clone() }.spill(&batch)
}

/// [`Encoder::write`] of `spilled` then `rows` (emptied; left out when empty and fragments
/// are given). Tests only.
#[cfg(test)]
fn write_parquet(rows: &mut Rows, spilled: Vec<Fragment>, source: &str) -> anyhow::Result<Vec<u8>> {
    let last = if rows.is_empty() && !spilled.is_empty() { None } else { Some(rows.finish()?) };
    Encoder { layout: rows.layout.clone() }.write(last.as_ref(), spilled, source)
}

/// Encodes `rows` as one Parquet file of one row group ([`Encoder::write`] without fragments)
/// and empties them. Tests only: the worker's files come from [`Encoder::write`].
///
/// Errors: Arrow or Parquet encoding errors (not expected for rows built by [`Rows::push`]).
#[cfg(test)]
pub fn encode_parquet(rows: &mut Rows, source: &str) -> anyhow::Result<Vec<u8>> {
    write_parquet(rows, Vec::new(), source)
}

/// A Parquet file of the row groups of `spilled` then `last`, with the key-value `entries`.
fn write_file(
    layout: &Layout,
    spilled: Vec<Fragment>,
    last: Option<RowGroup>,
    entries: &[parquet::file::metadata::KeyValue],
) -> anyhow::Result<Vec<u8>> {
    use parquet::column::writer::ColumnCloseResult;
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
    use parquet::file::writer::SerializedFileWriter;

    let fragments = spilled
        .into_iter()
        .map(|fragment| {
            let bytes = fragment.parquet()?;
            let metadata = ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Optional)
                .parse_and_finish(&bytes)?;
            if metadata.file_metadata().schema_descr().root_schema() != layout.parquet.root_schema() {
                anyhow::bail!("a Parquet fragment of another schema (a bug)");
            }
            Ok((bytes, metadata))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let indexed = fragments.iter().all(|(_, metadata)| metadata.page_index().is_some())
        && last.as_ref().is_none_or(RowGroup::indexed);
    let size = fragments.iter().map(|(b, _)| b.len()).sum::<usize>() + last.as_ref().map_or(0, |g| g.bytes);
    let mut out = Vec::with_capacity(size + 1024);
    let mut writer =
        SerializedFileWriter::new(&mut out, layout.parquet.root_schema_ptr(), layout.file_properties.clone())?;
    for entry in entries {
        writer.append_key_value_metadata(entry.clone());
    }
    for (bytes, metadata) in &fragments {
        let page_index = metadata.page_index().filter(|_| indexed);
        for (g, group) in metadata.row_groups().iter().enumerate() {
            let mut out_group = writer.next_row_group()?;
            for (c, column) in group.columns().iter().enumerate() {
                out_group.append_column(
                    bytes,
                    ColumnCloseResult {
                        bytes_written: column.compressed_size() as _,
                        rows_written: group.num_rows() as _,
                        metadata: column.clone(),
                        bloom_filter: None,
                        column_index: page_index.and_then(|p| p.column_index(g, c)).cloned(),
                        offset_index: page_index.and_then(|p| p.offset_index(g, c)).cloned(),
                    },
                )?;
            }
            out_group.close()?;
        }
    }
    if let Some(group) = last {
        let mut out_group = writer.next_row_group()?;
        for mut chunk in group.chunks {
            if !indexed {
                let close = chunk.close_mut();
                close.column_index = None;
                close.offset_index = None;
            }
            chunk.append_to_row_group(&mut out_group)?;
        }
        out_group.close()?;
    }
    writer.close()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::stream::Granularity;

    fn stream(name: &str) -> Arc<Stream> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/dev.toml");
        let environment = crate::config::load(root.to_str().unwrap()).unwrap();
        Arc::new(environment.streams.into_iter().find(|s| s.name == name).unwrap())
    }

    /// An ingestion time after every event time of the tests (2027-01-01T00:00:00Z, in µs).
    const NOW: i64 = 1_798_761_600_000_000;

    #[test]
    fn small_columns_are_stored_plain_large_ones_zstd_and_uuids_and_small_groups_numbers_without_a_dictionary() {
        use parquet::file::reader::{FileReader as _, SerializedFileReader};
        let codec = Codec::new(stream("client_tickets"));
        let mut rows = codec.rows();
        let now = NOW;
        let encode = |rows: &mut Rows, n: usize| {
            for i in 0..n {
                let ticket =
                    TICKET.replace("0b7f2c1e-8d7a-4c1f-9a55-1f0f6f1d2a11", &format!("0b7f2c1e-8d7a-4c1f-9a55-{i:012}"));
                let (_, row) = codec.decode(ticket.as_bytes(), now).unwrap();
                rows.push(&row, ticket.len(), 0, i as i64);
            }
            let body = encode_parquet(rows, "t/0").unwrap();
            let reader = SerializedFileReader::new(bytes::Bytes::from(body)).unwrap();
            let group = reader.metadata().row_group(0).clone();
            group
                .columns()
                .iter()
                .map(|c| (c.column_path().string(), c.compression(), c.dictionary_page_offset().is_some()))
                .collect::<Vec<_>>()
        };
        let small = encode(&mut rows, 10);
        for (column, compression, _) in &small {
            assert_eq!(*compression, Compression::UNCOMPRESSED, "{column} of 10 rows");
        }
        // Under DICTIONARY_FROM_ROWS rows, numbers and times go without a dictionary; texts keep
        // theirs.
        let dictionary = |c: &str| small.iter().find(|(name, ..)| name == c).unwrap().2;
        assert!(!dictionary("created_at") && !dictionary("kafka_partition"), "{small:?}");
        assert!(dictionary("channel") && dictionary("priority"), "{small:?}");
        let large = encode(&mut rows, 20_000);
        let column = |c: &str| large.iter().find(|(name, ..)| name == c).unwrap();
        assert!(matches!(column("ticket_id").1, Compression::ZSTD(_)), "{large:?}");
        assert!(matches!(column("kafka_offset").1, Compression::ZSTD(_)), "{large:?}");
        // Unique per row: no dictionary (the UUIDs and the offset); repeated texts keep theirs.
        assert!(!column("ticket_id").2 && !column("kafka_offset").2, "{large:?}");
        assert!(column("channel").2 && column("priority").2, "{large:?}");
    }

    #[test]
    fn row_groups_of_one_shape_share_a_factory_and_a_warm_one_writes_the_same_bytes() {
        let batch = |codec: &Codec, n: usize| {
            let mut rows = codec.rows();
            for i in 0..n {
                let ticket =
                    TICKET.replace("0b7f2c1e-8d7a-4c1f-9a55-1f0f6f1d2a11", &format!("0b7f2c1e-8d7a-4c1f-9a55-{i:012}"));
                let (_, row) = codec.decode(ticket.as_bytes(), NOW).unwrap();
                rows.push(&row, ticket.len(), 0, i as i64);
            }
            rows.finish().unwrap()
        };
        let warm = Codec::new(stream("client_tickets"));
        let encoder = warm.encoder();
        let shapes = |codec: &Codec| codec.layout.factories.lock().unwrap().len();
        let (ten, other_ten, big) = (batch(&warm, 10), batch(&warm, 10), batch(&warm, 5_000));
        let first = encoder.write(Some(&ten), Vec::new(), "t/0").unwrap();
        encoder.write(Some(&other_ten), Vec::new(), "t/0").unwrap();
        assert_eq!(shapes(&warm), 1, "two groups of 10 rows, one shape");
        encoder.write(Some(&big), Vec::new(), "t/0").unwrap();
        assert_eq!(shapes(&warm), 2, "5,000 rows: dictionaries, compressed columns");
        assert_eq!(encoder.write(Some(&ten), Vec::new(), "t/0").unwrap(), first);
        for n in [10, 5_000] {
            let cold = Codec::new(stream("client_tickets"));
            let rows = batch(&cold, n);
            assert_eq!(
                cold.encoder().write(Some(&rows), Vec::new(), "t/0").unwrap(),
                encoder.write(Some(&batch(&warm, n)), Vec::new(), "t/0").unwrap(),
                "{n} rows"
            );
        }
    }

    #[test]
    fn event_times_outside_the_streams_window_are_rejected_with_the_reason() {
        let codec = Codec::new(stream("incident_events"));
        let json = r#"{"number":"INC1","incident_state":"New","active":"true","reassignment_count":"0","reopen_count":"0","sys_mod_count":"0","made_sla":"true","caller_id":"?","opened_by":"?","opened_at":"29/2/2016 01:16","sys_created_by":"?","sys_created_at":"?","sys_updated_by":"x","sys_updated_at":"UPDATED","contact_type":"Phone","location":"?","category":"?","subcategory":"?","u_symptom":"?","cmdb_ci":"?","impact":"2 - Medium","urgency":"2 - Medium","priority":"3 - Moderate","assignment_group":"?","assigned_to":"?","knowledge":"true","u_priority_confirmation":"false","notify":"Do Not Notify","problem_id":"?","rfc":"?","vendor":"?","caused_by":"?","closed_code":"?","resolved_by":"?","resolved_at":"?","closed_at":"?"}"#;
        let at = |updated: &str| {
            codec.decode(json.replace("UPDATED", updated).as_bytes(), NOW).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(at("29/2/2016 01:16").is_ok());
        assert_eq!(
            at("1/1/1999 00:00").unwrap_err(),
            "field `sys_updated_at`: event time 1999-01-01T00:00:00Z is before the stream's window (event_time.not_before = 2000-01-01)"
        );
        assert_eq!(
            at("3/1/2027 00:00").unwrap_err(),
            "field `sys_updated_at`: event time 2027-01-03T00:00:00Z is more than 1 day(s) after its ingestion (event_time.max_ahead_days = 1)"
        );
        assert!(at("1/1/2027 23:00").is_ok(), "within a day of ingestion");
    }

    const TICKET: &str = r#"{"ticket_id":"0b7f2c1e-8d7a-4c1f-9a55-1f0f6f1d2a11","client_id":"c-17","created_at":"2026-03-01T23:30:00-02:00","channel":"email","priority":"high","subject":"Refund for INVOICE 42","body":"my login fails","customer_tier":null,"extra":{"a":[1,2]}}"#;

    #[test]
    fn ticket_is_typed_categorised_and_partitioned_by_utc_date() {
        let codec = Codec::new(stream("client_tickets"));
        let (day, row) = codec.decode(TICKET.as_bytes(), 7).unwrap();
        assert_eq!(Granularity::Day.value(day), "2026-03-02", "23:30 at -02:00 is 01:30 UTC the next day");
        let names: Vec<String> = codec.stream().columns().into_iter().map(|c| c.0).collect();
        // The last two columns, partition and offset, come from the consumer, not the payload.
        assert_eq!(row.len(), names.len() - 2);
        let cell = |name: &str| &row[names.iter().position(|n| n == name).unwrap()];
        assert_eq!(cell("category"), &Cell::Str("billing".into()), "billing outranks account");
        assert_eq!(cell("customer_tier"), &Cell::Null);
        assert_eq!(cell("ingested_at"), &Cell::Micros(7));
        assert_eq!(cell("created_at"), &Cell::Micros(1_772_415_000_000_000));
    }

    #[test]
    fn same_agrees_with_string_equality() {
        let texts: Vec<String> = (0..40)
            .flat_map(|n| {
                let base: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
                // Each byte changed in turn, and a multi-byte character at the end.
                let mut variants = vec![base.clone(), format!("{base}é")];
                for i in 0..n {
                    let mut changed = base.clone().into_bytes();
                    changed[i] = b'Z';
                    variants.push(String::from_utf8(changed).unwrap());
                }
                variants
            })
            .collect();
        for a in &texts {
            for b in &texts {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    impl Codec {
        /// [`Codec::decode_into`] into a new row, returned with the partition index.
        fn decode<'a>(&'a self, payload: &'a [u8], ingested_at: i64) -> Result<(i32, Row<'a>), Rejection> {
            let mut row = Row::new();
            let index = self.decode_into(payload, ingested_at, &mut row)?;
            Ok((index, row))
        }
    }

    #[test]
    fn parse_f64_reads_every_text_as_the_standard_library_does() {
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "4",
            "-0.7",
            "1023.2",
            "-18.8",
            "0.1",
            "0.3",
            "123456789012345",
            "-999999999999999",
            "1234567890123456",
            "0.000000000000001",
            "9007199254740993",
            "1.5e3",
            "1e400",
            "5.",
            ".5",
            "-.5",
            "+1",
            "",
            "-",
            ".",
            "1..2",
            "1.2.3",
            "NaN",
            "inf",
            "-inf",
            "0x10",
            "1_000",
            "12a",
            "--1",
            "00012.50",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        // Pseudo-random decimals of 1-17 digits with the point anywhere, both signs.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let digits = (state % 17 + 1) as usize;
            let mut text: String = (0..digits).map(|i| char::from(b'0' + ((state >> (i * 3)) % 10) as u8)).collect();
            let point = (state >> 40) as usize % (digits + 1);
            if point > 0 && point < digits {
                text.insert(point, '.');
            }
            if state >> 63 == 1 {
                text.insert(0, '-');
            }
            texts.push(text);
        }
        for text in &texts {
            let want = text.parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(parse_f64(text).map(f64::to_bits), want, "{text:?}");
        }
    }

    #[test]
    fn categories_match_whole_words_only() {
        let codec = Codec::new(stream("client_tickets"));
        let category = |subject: &str| {
            let json = TICKET.replace("Refund for INVOICE 42", subject).replace("my login fails", "");
            let (_, row) = codec.decode(json.as_bytes(), NOW).unwrap();
            match &row[row.len() - 2] {
                Cell::Str(s) => s.to_string(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(category("Parcel tracking?"), "logistics");
        assert_eq!(category("errors everywhere"), "other", "`errors` is not `error`");
        assert_eq!(category("2FA reset"), "account");
        assert_eq!(category("Sensor-timeout"), "technical");
    }

    #[test]
    fn keywords_match_any_case_and_non_ascii_words() {
        let rules = [
            crate::config::stream::CategoryRule { category: "first".into(), keywords: vec!["Straße".into()] },
            crate::config::stream::CategoryRule {
                category: "second".into(),
                keywords: vec!["login".into(), "ÉTAT".into()],
            },
        ];
        let categorizer = Categorizer::new(&rules, vec![], "other".into());
        assert_eq!(categorizer.categorize(["LOGIN failed"]), "second");
        assert_eq!(categorizer.categorize(["état du capteur"]), "second");
        assert_eq!(categorizer.categorize(["logins", "strasse"]), "other");
        assert_eq!(categorizer.categorize(["login", "STRAßE 5"]), "first", "the first rule wins across texts");
    }

    #[test]
    fn short_and_long_keywords_match_exactly_at_every_length() {
        // Words of up to 8 bytes are compared packed into an integer, longer ones byte-wise.
        let keywords = ["x", "shipment", "shipments", "maintenance"];
        let rules: Vec<_> = keywords
            .iter()
            .map(|k| crate::config::stream::CategoryRule { category: (*k).into(), keywords: vec![(*k).into()] })
            .collect();
        let categorizer = Categorizer::new(&rules, vec![], "other".into());
        for keyword in keywords {
            let upper = keyword.to_uppercase();
            assert_eq!(categorizer.categorize([format!("a {upper}, b").as_str()]), keyword);
        }
        // A prefix, an extension and a word differing in its last byte are other words.
        for text in ["shipmen", "shipmentz", "xx", "maintenanc", "maintenances", "shipmenT2", ""] {
            assert_eq!(categorizer.categorize([text]), "other", "{text}");
        }
    }

    #[test]
    fn numeric_patterns_read_fast_agree_with_chrono() {
        let patterns = ["%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%d.%m.%Y"];
        let chrono_only =
            |p: &Pattern, v: &str| p.parse(v).and_then(|parsed| parsed.to_naive_datetime_with_offset(0).ok());
        let fast = [true, true, false, false]; // letters in literals: chrono decides
        for (text, has_fast) in patterns.iter().zip(fast) {
            let pattern = Pattern::new(text);
            assert_eq!(pattern.fast.is_some(), has_fast, "{text}");
            let mut values = Vec::new();
            for d in ["1", "01", "29", "31", "0", "123", " 3", ""] {
                for m in ["2", "02", "12", "13", "0"] {
                    for y in ["2016", "216", "20166", "+2016"] {
                        for hm in ["01:16", "1:6", "24:00", "23:59", "0116", "01:16:59", "01:16:60", "1:16 "] {
                            for sep in [" ", "  ", "T", ""] {
                                values.push(format!("{d}/{m}/{y}{sep}{hm}"));
                                values.push(format!("{y}-{m}-{d}{sep}{hm}"));
                            }
                        }
                    }
                }
            }
            for value in &values {
                assert_eq!(pattern.datetime(value), chrono_only(&pattern, value), "`{value}` with `{text}`");
            }
            assert!(values.iter().any(|v| pattern.datetime(v).is_some()) || !has_fast, "{text} read something");
        }
        // The ITSM log's shape takes the fast path (not chrono's).
        let itsm = Pattern::new("%d/%m/%Y %H:%M");
        let read = Pattern::read_fast(itsm.fast.as_deref().unwrap(), b"29/2/2016 01:16");
        assert_eq!(read, NaiveDate::from_ymd_opt(2016, 2, 29).unwrap().and_hms_opt(1, 16, 0));
    }

    #[test]
    fn trim_agrees_with_str_trim() {
        let spaces = ["", " ", "\t", "\n", "\u{0b}", "\u{0c}", "\r", "\u{85}", "\u{a0}", "\u{3000}", "x", "é"];
        for a in spaces {
            for b in ["", "1", "1.5", "é", "\u{a0}", " 2 "] {
                for c in spaces {
                    let text = format!("{a}{b}{c}");
                    assert_eq!(trim(&text), text.trim(), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn keys_in_any_order_escaped_and_repeated_are_read() {
        let codec = Codec::new(stream("client_tickets"));
        let reordered = r#"{"customer\u005ftier":"pro","body":null,"subject":"x","priority":"low","channel":"web","created_at":"2026-03-01T00:00:00Z","client_id":"c-1","ticket_id":"0b7f2c1e-8d7a-4c1f-9a55-1f0f6f1d2a11","priority":"high"}"#;
        let (_, row) = codec.decode(reordered.as_bytes(), NOW).unwrap();
        let names: Vec<String> = codec.stream().columns().into_iter().map(|c| c.0).collect();
        let cell = |name: &str| &row[names.iter().position(|n| n == name).unwrap()];
        assert_eq!(cell("client_id"), &Cell::Str("c-1".into()));
        assert_eq!(cell("customer_tier"), &Cell::Str("pro".into()), "a key with an escape is read");
        assert_eq!(cell("priority"), &Cell::Str("high".into()), "the last of a repeated key counts");
        let escaped = reordered.replace(r#""subject":"x""#, r#""subject":"caf\u00e9 \"\ud83d\ude00\"\n\t\\""#);
        let (_, row) = codec.decode(escaped.as_bytes(), NOW).unwrap();
        let subject = names.iter().position(|n| n == "subject").unwrap();
        assert_eq!(row[subject], Cell::Str("café \"😀\"\n\t\\".into()), "escapes in values are decoded");

        // Keys sorted in byte order (as Go's encoding/json writes a map's) read as in field
        // order; the chain of sorted keys the decoder tries second visits every key once.
        let ticket_id = r#""ticket_id":"0b7f2c1e-8d7a-4c1f-9a55-1f0f6f1d2a11""#;
        let (created, tier) = (r#""created_at":"2026-03-01T00:00:00Z""#, r#""customer_tier":"pro""#);
        let sorted = format!(
            r#"{{"body":"b","channel":"web","client_id":"c-1",{created},{tier},"priority":"low","subject":"x",{ticket_id}}}"#
        );
        let in_field_order = format!(
            r#"{{{ticket_id},"client_id":"c-1",{created},"channel":"web","priority":"low","subject":"x","body":"b",{tier}}}"#
        );
        assert_eq!(
            codec.decode(sorted.as_bytes(), NOW).unwrap(),
            codec.decode(in_field_order.as_bytes(), NOW).unwrap()
        );
        let (mut chain, mut at) = (Vec::new(), codec.keys.len());
        while let Some(&slot) = codec.sorted_next.get(at).filter(|&&slot| slot < codec.keys.len()) {
            chain.push(&*codec.keys[slot]);
            at = slot;
        }
        let mut want: Vec<&str> = codec.keys.iter().map(|k| &**k).collect();
        want.sort_unstable();
        assert_eq!(chain, want);
    }

    #[test]
    fn invalid_records_are_rejected_with_the_field_and_reason() {
        let codec = Codec::new(stream("client_tickets"));
        let reason = |json: &str| codec.decode(json.as_bytes(), NOW).unwrap_err().to_string();
        let mut not_utf8 = TICKET.as_bytes().to_vec();
        let at = TICKET.find("Refund").unwrap();
        not_utf8[at] = 0xff;
        assert_eq!(
            codec.decode(&not_utf8, NOW).unwrap_err().to_string(),
            format!("not a JSON object: invalid UTF-8 at byte {at}")
        );
        assert!(reason("not json").starts_with("not a JSON object"), "{}", reason("not json"));
        // One line that says what and where (the parser's message would go on to quote the
        // payload, which the rejected line holds in full).
        assert_eq!(
            reason(r#"{"a":1,}"#),
            "not a JSON object: JSON has a comma after the last value in an array or object at line 1 column 8"
        );
        assert_eq!(reason(&TICKET[..40]), "not a JSON object: EOF while parsing at line 1 column 40");
        // What the JSON grammar forbids is rejected, as a standard parser would.
        for bad in ["\t", "\u{1}", "\\x", "\\ud800", "\\ud800x"] {
            let text = reason(&TICKET.replace("Refund", &format!("Ref{bad}und")));
            assert!(text.starts_with("not a JSON object: ") && !text.contains('\n'), "{bad:?}: {text}");
        }
        for number in ["1e400", "01", "1.", ".5", "NaN", "+1"] {
            let text = reason(&TICKET.replace(r#""high""#, number));
            assert!(text.starts_with("not a JSON object: ") && !text.contains('\n'), "{number}: {text}");
        }
        assert!(reason("[1]").starts_with("not a JSON object"));
        assert_eq!(reason(&TICKET.replace(r#""client_id":"c-17","#, "")), "field `client_id`: missing required field");
        assert_eq!(reason(&TICKET.replace(r#""high""#, "3")), "field `priority`: expected string, got a number");
        assert_eq!(
            reason(&TICKET.replace(r#""high""#, r#""urgent""#)),
            "field `priority`: `urgent` is not one of low, medium, high, critical"
        );
        assert_eq!(
            reason(&TICKET.replace("2026-03-01T23:30:00-02:00", "yesterday")),
            "field `created_at`: `yesterday` is not an RFC 3339 timestamp"
        );
        assert_eq!(
            reason(&TICKET.replace("0b7f2c1e-", "zz")),
            "field `ticket_id`: `zz8d7a-4c1f-9a55-1f0f6f1d2a11` is not a UUID"
        );
    }

    #[test]
    fn csv_replays_are_typed_with_null_markers_and_patterns() {
        let codec = Codec::new(stream("sensor_readings"));
        let json = r#"{"No":"1","year":"2013","month":"3","day":"1","hour":"0","PM2.5":"4","PM10":"NA","SO2":"4","NO2":"7","CO":"300","O3":"77","TEMP":"-0.7","PRES":"1023","DEWP":"-18.8","RAIN":"0","wd":"NNW","WSPM":"4.4","station":"Aotizhongxin"}"#;
        let (day, row) = codec.decode(json.as_bytes(), NOW).unwrap();
        assert_eq!(Granularity::Day.value(day), "2013-02-28", "midnight in Beijing is the previous UTC day");
        assert_eq!(row[0], Cell::I64(1));
        assert_eq!(row[5], Cell::F64(4.0));
        assert_eq!(row[6], Cell::Null);
        assert_eq!(row[11], Cell::F64(-0.7));
        let bad = json.replace(r#""month":"3""#, r#""month":"13""#);
        assert_eq!(
            codec.decode(bad.as_bytes(), NOW).unwrap_err().to_string(),
            "year/month/day/hour 2013/13/1/0 is not a valid hour"
        );

        let codec = Codec::new(stream("incident_events"));
        // The first row of shared/data/itsm_incident_event_log/incident_event_log.csv.
        let header = "number,incident_state,active,reassignment_count,reopen_count,sys_mod_count,made_sla,caller_id,opened_by,opened_at,sys_created_by,sys_created_at,sys_updated_by,sys_updated_at,contact_type,location,category,subcategory,u_symptom,cmdb_ci,impact,urgency,priority,assignment_group,assigned_to,knowledge,u_priority_confirmation,notify,problem_id,rfc,vendor,caused_by,closed_code,resolved_by,resolved_at,closed_at";
        let cells = "INC0000045,New,true,0,0,0,true,Caller 2403,Opened by  8,29/2/2016 01:16,Created by 6,29/2/2016 01:23,Updated by 21,5/3/2016 12:00,Phone,Location 143,Category 55,Subcategory 170,Symptom 72,?,2 - Medium,2 - Medium,3 - Moderate,Group 56,?,true,false,Do Not Notify,?,?,?,?,code 5,Resolved by 149,29/2/2016 11:29,5/3/2016 12:00";
        let fields: serde_json::Map<String, serde_json::Value> =
            header.split(',').zip(cells.split(',')).map(|(k, v)| (k.to_owned(), v.into())).collect();
        let json = serde_json::to_string(&fields).unwrap();
        let (day, row) = codec.decode(json.as_bytes(), NOW).unwrap();
        assert_eq!(Granularity::Day.value(day), "2016-03-05", "partitioned by sys_updated_at");
        assert_eq!(row[2], Cell::Bool(true));
        assert_eq!(row[7], Cell::Str("Caller 2403".into()));
        let cmdb = codec.stream().fields.iter().position(|f| f.name == "cmdb_ci").unwrap();
        assert_eq!(row[cmdb], Cell::Null, "`?` is null");
        assert_eq!(row[9], Cell::Micros(1_456_708_560_000_000), "29/2/2016 01:16 UTC");
        let bad = json.replace("29/2/2016 01:16", "31/2/2016 01:16");
        assert_eq!(
            codec.decode(bad.as_bytes(), NOW).unwrap_err().to_string(),
            "field `opened_at`: `31/2/2016 01:16` does not match `%d/%m/%Y %H:%M`"
        );
    }

    #[test]
    fn one_page_files_have_no_page_index_larger_ones_do_and_both_join_in_order() {
        use arrow_array::cast::AsArray as _;
        use arrow_array::types::Int64Type;
        use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
        let codec = Codec::new(stream("client_tickets"));
        let (_, row) = codec.decode(TICKET.as_bytes(), NOW).unwrap();
        let mut offset = 0i64;
        let mut rows_of = |n: usize| {
            let mut rows = codec.rows();
            for _ in 0..n {
                rows.push(&row, TICKET.len(), 0, offset);
                offset += 1;
            }
            rows
        };
        let indexed = |file: &bytes::Bytes| -> Vec<bool> {
            let metadata = ParquetMetaDataReader::new().parse_and_finish(file).unwrap();
            metadata.row_groups().iter().map(|g| g.column(0).column_index_offset().is_some()).collect()
        };
        // Over the writer's 20,000 rows per data page: several pages, a page index.
        let small = spill_parquet(&mut rows_of(10)).unwrap();
        let large = spill_parquet(&mut rows_of(25_000)).unwrap();
        let mut last = rows_of(3);
        let parquet = |f: &Fragment| f.clone().parquet().unwrap();
        assert_eq!((indexed(&parquet(&small)), indexed(&parquet(&large))), (vec![false], vec![true]));
        // A small fragment (plain columns) is held compressed, a large one as its Parquet file.
        assert!(small.len() * 2 < parquet(&small).len(), "{} of {}", small.len(), parquet(&small).len());
        assert_eq!(large.len(), parquet(&large).len());
        let joined = bytes::Bytes::from(write_parquet(&mut last, vec![small, large.clone()], "t/0").unwrap());
        assert!(last.is_empty());
        assert_eq!(indexed(&joined), [false, false, false], "a page index for every row group or none");
        let large_only =
            bytes::Bytes::from(write_parquet(&mut rows_of(25_000), vec![large.clone(), large], "t/0").unwrap());
        let metadata = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .parse_and_finish(&large_only)
            .unwrap();
        assert!(metadata.page_index().is_some(), "indexed groups keep their page index when joined");
        assert_eq!(indexed(&large_only), [true, true, true]);
        // Fragments alone make the file (no empty row group after them).
        let mut none = codec.rows();
        let spilled = spill_parquet(&mut rows_of(4)).unwrap();
        assert_eq!(indexed(&bytes::Bytes::from(write_parquet(&mut none, vec![spilled], "t/0").unwrap())), [false]);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(joined).unwrap();
        let mut offsets: Vec<i64> = Vec::new();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            offsets.extend(batch.column_by_name("kafka_offset").unwrap().as_primitive::<Int64Type>().values().iter());
        }
        assert_eq!(offsets, (0..25_013).collect::<Vec<i64>>(), "the groups' rows, in order");
    }

    #[test]
    fn parquet_roundtrip_keeps_the_schema() {
        let codec = Codec::new(stream("client_tickets"));
        let mut rows = codec.rows();
        let (_, row) = codec.decode(TICKET.as_bytes(), NOW).unwrap();
        rows.push(&row, TICKET.len(), 2, 5);
        rows.push(&row, TICKET.len(), 2, 9);
        assert_eq!(rows.bytes(), 2 * TICKET.len());
        let bytes = encode_parquet(&mut rows, "client_tickets/0").unwrap();
        assert!(rows.is_empty());
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let metadata = builder.metadata().file_metadata().key_value_metadata().unwrap().clone();
        let value = |key: &str| metadata.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone());
        assert_eq!(value(SOURCE_KEY).as_deref(), Some("client_tickets/0"));
        let reader = builder.build().unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        assert_eq!(batches[0].schema().fields(), codec.schema().fields());
        // Every row says where it was read: its partition and offset.
        let column = |name: &str| batches[0].column_by_name(name).unwrap().clone();
        let partitions = column("kafka_partition");
        let partitions = partitions.as_any().downcast_ref::<arrow_array::Int32Array>().unwrap();
        assert_eq!(partitions.values().to_vec(), [2, 2]);
        let offsets = column("kafka_offset");
        let offsets = offsets.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        assert_eq!(offsets.values().to_vec(), [5, 9]);
    }
}
