//! One problem found in a configuration file, with its position.
//!
//! Validation never stops at the first problem: it returns every [`Diagnostic`] it found, and
//! each one names the file, the 1-based line and column, and the dotted path of the field, so a
//! user can fix the whole file in one pass.

use std::fmt;
use std::path::PathBuf;

/// A problem at a position in a configuration file.
///
/// Displays as `FILE:LINE:COLUMN: FIELD: MESSAGE` (the `FIELD: ` part is left out when the
/// problem is about the file as a whole), the format editors and CI annotators understand.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file, as the user named it (relative paths stay relative).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted path of the field, such as `vpn.customer_gateway_asn` or `fields[2].type`.
    pub field: String,
    /// Lower-case sentence without a trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// The text of one configuration file, able to turn byte offsets into lines and columns.
#[derive(Debug)]
pub struct Source {
    /// The file, as the user named it.
    pub path: PathBuf,
    /// Its whole content.
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    /// Wraps the content of `path`.
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { path: path.into(), text, line_starts }
    }

    /// 1-based (line, column) of a byte offset; offsets past the end map to the last position.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        (line + 1, column)
    }

    /// A diagnostic at byte `offset` of this file.
    pub fn diagnostic(&self, offset: usize, field: &str, message: impl Into<String>) -> Diagnostic {
        let (line, column) = self.position(offset);
        Diagnostic { file: self.path.clone(), line, column, field: field.to_owned(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let source = Source::new("x.toml", "a = 1\nb = \"é\" # c\n\nd".to_owned());
        assert_eq!(source.position(0), (1, 1));
        assert_eq!(source.position(4), (1, 5));
        assert_eq!(source.position(6), (2, 1));
        // 'é' is two bytes but one column.
        let hash = source.text.find('#').unwrap();
        assert_eq!(source.position(hash), (2, 9));
        assert_eq!(source.position(source.text.len()), (4, 2));
    }

    #[test]
    fn display_is_file_line_column_field_message() {
        let source = Source::new("environments/dev.toml", "\n\n  x = 1".to_owned());
        let diagnostic = source.diagnostic(4, "network.x", "unknown key");
        assert_eq!(diagnostic.to_string(), "environments/dev.toml:3:3: network.x: unknown key");
    }
}
