//! A small reader over `toml-span` values that collects every problem instead of stopping.
//!
//! serde stops at the first unknown key or wrong type; a user fixing an environment file wants
//! all of them at once, each with its position. [`Reader`] walks a spanned TOML tree: every
//! missing key, wrong type, unparsable value and unknown key becomes a [`Diagnostic`] with the
//! dotted field path, and decoding carries on with the rest of the file.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use toml_span::value::{Table as RawTable, ValueInner};
use toml_span::{Span, Spanned, Value};

use crate::config::diagnostic::{Diagnostic, Source};

/// A value that can be decoded from one TOML value.
pub(crate) trait Decode: Sized {
    /// Err carries the span to point at (an array element, say) and a lower-case message.
    fn decode(value: &mut Value<'_>) -> Result<Self, (Span, String)>;
}

/// Collects diagnostics while decoding one file.
pub(crate) struct Reader<'s> {
    source: &'s Source,
    diagnostics: Vec<Diagnostic>,
}

/// A TOML table being decoded: keys are removed as they are read; what is left is unknown.
pub(crate) struct Table<'de> {
    path: String,
    pub(crate) span: Span,
    entries: RawTable<'de>,
    expected: Vec<&'static str>,
}

impl<'de> Table<'de> {
    /// The dotted path of this table (empty for the root).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The span of the table (its header, for a missing-key error).
    pub(crate) fn span(&self) -> Span {
        self.span
    }

    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

impl<'s> Reader<'s> {
    pub(crate) fn new(source: &'s Source) -> Self {
        Self { source, diagnostics: Vec::new() }
    }

    /// Every problem found so far.
    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }

    /// Records a problem at `span` (for a quoted string, at its opening quote).
    pub(crate) fn error(&mut self, span: Span, field: &str, message: impl Into<String>) {
        let text = self.source.text.as_bytes();
        let start = match span.start.checked_sub(1).map(|i| text[i]) {
            Some(b'"' | b'\'') => span.start - 1,
            _ => span.start,
        };
        self.diagnostics.push(self.source.diagnostic(start, field, message));
    }

    /// Parses the whole file; a syntax error is the only diagnostic then.
    pub(crate) fn parse(&mut self) -> Option<Table<'s>> {
        match toml_span::parse(&self.source.text) {
            Ok(mut value) => self.table(&mut value, String::new()),
            Err(error) => {
                self.error(error.span, "", syntax_message(&error.kind));
                None
            }
        }
    }

    /// Views `value` as a table at `path`.
    pub(crate) fn table<'de>(&mut self, value: &mut Value<'de>, path: String) -> Option<Table<'de>> {
        let span = value.span;
        match value.take() {
            ValueInner::Table(entries) => Some(Table { path, span, entries, expected: Vec::new() }),
            other => {
                self.error(span, &path, format!("expected a table, found {}", describe(&other)));
                None
            }
        }
    }

    /// Reads a key that must be present.
    pub(crate) fn required<T: Decode>(&mut self, table: &mut Table<'_>, key: &'static str) -> Option<Spanned<T>> {
        if !table.entries.contains_key(key) {
            table.expected.push(key);
            self.error(table.span, &table.path, format!("missing required key `{key}`"));
            return None;
        }
        self.optional(table, key)
    }

    /// Reads a key that may be absent.
    pub(crate) fn optional<T: Decode>(&mut self, table: &mut Table<'_>, key: &'static str) -> Option<Spanned<T>> {
        table.expected.push(key);
        let (_, mut value) = table.entries.remove_entry(key)?;
        let span = value.span;
        match T::decode(&mut value) {
            Ok(decoded) => Some(Spanned::with_span(decoded, span)),
            Err((at, message)) => {
                let field = table.field(key);
                self.error(at, &field, message);
                None
            }
        }
    }

    /// Reads a key that may be absent, with a default.
    pub(crate) fn or_default<T: Decode>(&mut self, table: &mut Table<'_>, key: &'static str, default: T) -> Spanned<T> {
        let span = table.span;
        self.optional(table, key).unwrap_or(Spanned::with_span(default, span))
    }

    /// Reads a sub-table that must be present.
    pub(crate) fn required_table<'de>(&mut self, table: &mut Table<'de>, key: &'static str) -> Option<Table<'de>> {
        if !table.entries.contains_key(key) {
            table.expected.push(key);
            self.error(table.span, &table.path, format!("missing required table `[{}]`", table.field(key)));
            return None;
        }
        self.optional_table(table, key)
    }

    /// Reads a sub-table that may be absent.
    pub(crate) fn optional_table<'de>(&mut self, table: &mut Table<'de>, key: &'static str) -> Option<Table<'de>> {
        table.expected.push(key);
        let (_, mut value) = table.entries.remove_entry(key)?;
        let path = table.field(key);
        self.table(&mut value, path)
    }

    /// Reads an array of tables (`[[key]]`), possibly absent (empty).
    pub(crate) fn tables<'de>(&mut self, table: &mut Table<'de>, key: &'static str) -> Vec<Table<'de>> {
        table.expected.push(key);
        let Some((_, mut value)) = table.entries.remove_entry(key) else {
            return Vec::new();
        };
        let field = table.field(key);
        let span = value.span;
        match value.take() {
            ValueInner::Array(items) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, mut item)| self.table(&mut item, format!("{field}[{i}]")))
                .collect(),
            other => {
                self.error(span, &field, format!("expected an array of tables, found {}", describe(&other)));
                Vec::new()
            }
        }
    }

    /// Reads every entry of a table whose keys are free (names), such as `[streams.NAME]`.
    pub(crate) fn entries<'de>(&mut self, table: Table<'de>) -> Vec<(Spanned<String>, Table<'de>)> {
        let mut out = Vec::new();
        for (key, mut value) in table.entries {
            let path = join(&table.path, &key.name);
            if let Some(sub) = self.table(&mut value, path) {
                out.push((Spanned::with_span(key.name.into_owned(), key.span), sub));
            }
        }
        out
    }

    /// Reports the keys nobody read as unknown, with what was expected.
    pub(crate) fn finish(&mut self, table: Table<'_>) {
        let mut expected = table.expected.clone();
        expected.sort_unstable();
        expected.dedup();
        for (key, _) in table.entries {
            let field = join(&table.path, &key.name);
            let message = format!("unknown key `{}`; expected one of: {}", key.name, expected.join(", "));
            self.error(key.span, &field, message);
        }
    }
}

fn describe(value: &ValueInner<'_>) -> &'static str {
    match value {
        ValueInner::String(_) => "a string",
        ValueInner::Integer(_) => "an integer",
        ValueInner::Float(_) => "a float",
        ValueInner::Boolean(_) => "a boolean",
        ValueInner::Array(_) => "an array",
        ValueInner::Table(_) => "a table",
    }
}

fn syntax_message(kind: &toml_span::ErrorKind) -> String {
    use toml_span::ErrorKind as K;
    let detail = match kind {
        K::UnexpectedEof => "unexpected end of file".to_owned(),
        K::Unexpected(c) => format!("unexpected character {c:?}"),
        K::UnterminatedString | K::InvalidCharInString('\n') => {
            "unterminated string (no closing quote before the end of the line)".to_owned()
        }
        K::InvalidCharInString(c) => format!("invalid character {c:?} in a string"),
        K::InvalidNumber => "invalid number".to_owned(),
        K::DuplicateTable { name, .. } => format!("table `[{name}]` is defined twice"),
        K::DuplicateKey { key, .. } => format!("key `{key}` is defined twice"),
        K::Wanted { expected, found } => format!("expected {expected}, found {found}"),
        K::UnquotedString => "strings must be quoted".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    format!("invalid TOML: {detail}")
}

fn wanted(expected: &str, value: &mut Value<'_>) -> (Span, String) {
    let span = value.span;
    let found = describe(&value.take());
    (span, format!("expected {expected}, found {found}"))
}

impl Decode for String {
    fn decode(value: &mut Value<'_>) -> Result<Self, (Span, String)> {
        match value.take() {
            ValueInner::String(s) => Ok(s.into_owned()),
            other => {
                value.set(other);
                Err(wanted("a string", value))
            }
        }
    }
}

impl Decode for bool {
    fn decode(value: &mut Value<'_>) -> Result<Self, (Span, String)> {
        match value.take() {
            ValueInner::Boolean(b) => Ok(b),
            other => {
                value.set(other);
                Err(wanted("a boolean (true or false)", value))
            }
        }
    }
}

macro_rules! decode_integer {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(value: &mut Value<'_>) -> Result<Self, (Span, String)> {
                match value.take() {
                    ValueInner::Integer(i) => <$t>::try_from(i).map_err(|_| {
                        (value.span, format!("must be between {} and {}, found {i}", <$t>::MIN, <$t>::MAX))
                    }),
                    other => {
                        value.set(other);
                        Err(wanted("an integer", value))
                    }
                }
            }
        }
    )*};
}
decode_integer!(u16, u32, u64, i64);

impl<T: Decode> Decode for Vec<T> {
    fn decode(value: &mut Value<'_>) -> Result<Self, (Span, String)> {
        match value.take() {
            ValueInner::Array(items) => items.into_iter().map(|mut item| T::decode(&mut item)).collect(),
            other => {
                value.set(other);
                Err(wanted("an array", value))
            }
        }
    }
}

/// Decodes a string through [`std::str::FromStr`], with `what` naming the expected syntax.
pub(crate) fn decode_parsed<T: std::str::FromStr>(value: &mut Value<'_>, what: &str) -> Result<T, (Span, String)> {
    let span = value.span;
    let text = String::decode(value)?;
    text.parse().map_err(|_| (span, format!("`{text}` is not {what}")))
}

impl<T: Decode> Decode for Spanned<T> {
    fn decode(value: &mut Value<'_>) -> Result<Self, (Span, String)> {
        let span = value.span;
        T::decode(value).map(|v| Spanned::with_span(v, span))
    }
}

impl Decode for Ipv4Net {
    fn decode(value: &mut Value<'_>) -> Result<Self, (Span, String)> {
        let span = value.span;
        let net: Ipv4Net = decode_parsed(value, "an IPv4 CIDR block such as 10.0.0.0/16")?;
        if net.trunc() != net {
            return Err((span, format!("`{net}` has host bits set; the network is {}", net.trunc())));
        }
        Ok(net)
    }
}

impl Decode for Ipv4Addr {
    fn decode(value: &mut Value<'_>) -> Result<Self, (Span, String)> {
        decode_parsed(value, "an IPv4 address")
    }
}

/// Implements [`Decode`] for a fieldless enum from its snake_case spellings, and `as_str`.
macro_rules! decode_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $crate::config::decode::Decode for $name {
            fn decode(value: &mut toml_span::Value<'_>) -> Result<Self, (toml_span::Span, String)> {
                let span = value.span;
                let text = <String as $crate::config::decode::Decode>::decode(value)?;
                match text.as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err((span, format!(
                        "unknown value `{text}`; expected one of: {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
        impl $name {
            /// The spelling used in configuration files.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            /// The value spelled `text` as in configuration files; Err names the accepted ones.
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!("unknown value `{text}`; expected one of: {}", [$($text),+].join(", "))),
                }
            }
        }
    };
}
pub(crate) use decode_enum;
