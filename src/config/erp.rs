//! The cold path's configuration: the factory's ERP database (SQL Server, reached over the
//! VPN) and the tables AWS DMS replicates from it into the lake's `raw` zone.
//!
//! Declared in the environment file as `[erp]` with one `[erp.tables.NAME]` per table; each
//! table's columns are declared like a stream's fields, and the Glue table, the DMS table
//! mappings and `indutech load`'s Parquet schema all derive from that one declaration.

use std::net::Ipv4Addr;

use toml_span::{Span, Spanned};

use crate::config::decode::{Reader, Table, decode_enum};
use crate::config::stream::{FieldType, is_identifier};

/// The column DMS writes first in every file of an S3 target with `IncludeOpForFullLoad`: the
/// source operation, `I` (insert; every full-load row), `U` (update) or `D` (delete). String.
pub const OP_COLUMN: &str = "op";

/// The ERP source and what to replicate from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erp {
    /// The SQL Server's address, inside `on_premises.cidrs` (reached through the VPN).
    pub host: Ipv4Addr,
    /// Its TCP port (default 1433).
    pub port: u16,
    /// The database to replicate from.
    pub database: String,
    /// Name of the Secrets Manager secret (created by the ERP's owners, not by indutech) holding
    /// the login as DMS reads it: a JSON object with `username`, `password`, `host` and `port`.
    /// indutech never reads it: DMS does, through the role indutech gives it.
    pub credentials_secret: String,
    /// TLS to the SQL Server: `none` or `require` (default); `verify-ca` and `verify-full` are
    /// refused until indutech imports the server's CA certificate into DMS.
    pub ssl_mode: SslMode,
    /// The replication instance class, such as `dms.r6i.large`.
    pub instance_class: String,
    /// The replication instance's storage, GB (5 to 6144; default 100): DMS keeps its logs and
    /// cached changes there.
    pub allocated_storage_gb: u32,
    /// A standby replication instance in another zone (default false).
    pub multi_az: bool,
    /// Whether apply starts the replication task (full load, then ongoing changes) and keeps
    /// it running; false (the default) creates it stopped.
    pub start_replication: bool,
    /// Size of the history to transfer, GB (10^9 bytes; 0 when unknown): `plan` says how long
    /// the full load takes over the VPN and the instance class.
    pub history_gb: u64,
    /// The tables to replicate, sorted by name.
    pub tables: Vec<ErpTable>,
}

/// TLS to the source database, as DMS names its `SslMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS (only inside the VPN's IPsec).
    None,
    /// TLS without verifying the server's certificate.
    Require,
    /// TLS with the server's certificate checked against a CA (a DMS certificate).
    VerifyCa,
    /// As `verify-ca`, and the host name checked.
    VerifyFull,
}
decode_enum!(SslMode { None => "none", Require => "require", VerifyCa => "verify-ca", VerifyFull => "verify-full" });

/// One replicated table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErpTable {
    /// The Glue table's name in the environment's database (lower-case identifier, distinct
    /// from every stream's), and the table's folder in the lake.
    pub name: String,
    /// The source schema (default `dbo`), as written in SQL Server.
    pub schema: String,
    /// The source table's name (default: `name`), as written in SQL Server.
    pub source_table: String,
    /// Its columns, in the source table's order.
    pub columns: Vec<ErpColumn>,
}

/// One column of a replicated table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErpColumn {
    /// The column's name in the lake and in Glue (lower-case identifier).
    pub name: String,
    /// The source column's name (default: `name`): DMS renames it to `name`.
    pub source: String,
    /// The Glue type (`string`, `int`, `bigint`, `double`, `boolean`, `timestamp`, `date`).
    #[serde(rename = "type")]
    pub column_type: FieldType,
}

impl ErpTable {
    /// Every column of the table in the lake, in file order: [`OP_COLUMN`] (string) first, as
    /// DMS writes it, then the declared columns.
    pub fn columns(&self) -> Vec<(String, FieldType)> {
        std::iter::once((OP_COLUMN.to_owned(), FieldType::String))
            .chain(self.columns.iter().map(|c| (c.name.clone(), c.column_type)))
            .collect()
    }

    /// The table's prefix in the raw bucket, where DMS writes it: `erp/<schema>/<name>/`
    /// (DMS's `<bucket folder>/<schema>/<table>/`, the schema in lower case and the table
    /// renamed by the table mappings).
    pub fn prefix(&self) -> String {
        format!("{ERP_FOLDER}/{}/{}/", self.schema.to_lowercase(), self.name)
    }
}

/// The raw bucket's folder DMS writes into (its S3 target's `BucketFolder`).
pub const ERP_FOLDER: &str = "erp";

/// DMS replication instance classes' families (`dms.<family>.<size>`), from AWS DMS's list of
/// supported instance types (User Guide, "Choosing the right AWS DMS replication instance").
pub const DMS_FAMILIES: &[&str] = &["t3", "c5", "c6i", "c7i", "r5", "r6i", "r7i"];

/// What [`decode_erp`] found, with the positions later checks report at.
pub(crate) struct DecodedErp {
    pub(crate) erp: Erp,
    /// Where `host` is written (checked against the factory's networks).
    pub(crate) host: Span,
    /// Each table's name and where it is declared (checked against the streams' names).
    pub(crate) tables: Vec<Spanned<String>>,
}

/// Decodes `[erp]`; None when a required value is missing or unusable (the problems are in
/// the reader).
pub(crate) fn decode_erp(reader: &mut Reader<'_>, table: &mut Table<'_>) -> Option<DecodedErp> {
    let host = reader.required::<Ipv4Addr>(table, "host");
    let port = reader.or_default(table, "port", 1433u16);
    let database = reader.required::<String>(table, "database");
    let credentials_secret = reader.required::<String>(table, "credentials_secret");
    let ssl_mode = reader.or_default(table, "ssl_mode", SslMode::Require);
    let instance_class = reader.or_default(table, "instance_class", "dms.r6i.large".to_owned());
    let allocated_storage_gb = reader.or_default(table, "allocated_storage_gb", 100u32);
    let multi_az = reader.or_default(table, "multi_az", false);
    let start_replication = reader.or_default(table, "start_replication", false);
    let history_gb = reader.or_default(table, "history_gb", 0u64);
    let tables_span = table.span();
    let mut spans = Vec::new();
    let tables: Vec<ErpTable> = match reader.optional_table(table, "tables") {
        Some(sub) => reader
            .entries(sub)
            .into_iter()
            .filter_map(|(name, t)| {
                spans.push(name.clone());
                decode_table(reader, name, t)
            })
            .collect(),
        None => Vec::new(),
    };

    if matches!(ssl_mode.value, SslMode::VerifyCa | SslMode::VerifyFull) {
        reader.error(
            ssl_mode.span,
            "erp.ssl_mode",
            format!(
                "\"{}\" needs the SQL Server's CA certificate imported into DMS, which indutech does not manage \
                 yet; use \"require\" (TLS inside the VPN's IPsec)",
                ssl_mode.value.as_str()
            ),
        );
    }
    if port.value == 0 {
        reader.error(port.span, "erp.port", "must be between 1 and 65535");
    }
    if let Some(database) = &database
        && (database.value.is_empty() || database.value.len() > 128 || database.value.contains(['"', '\'', ';']))
    {
        reader.error(database.span, "erp.database", format!("`{}` is not a SQL Server database name", database.value));
    }
    if let Some(secret) = &credentials_secret {
        let ok = !secret.value.is_empty()
            && secret.value.len() <= 512
            && secret.value.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
        if !ok {
            reader.error(
                secret.span,
                "erp.credentials_secret",
                format!("`{}` is not a Secrets Manager secret name (letters, digits and /_+=.@-)", secret.value),
            );
        }
    }
    let family = instance_class.value.strip_prefix("dms.").and_then(|rest| rest.split_once('.')).map(|(f, _)| f);
    if !family.is_some_and(|f| DMS_FAMILIES.contains(&f)) {
        reader.error(
            instance_class.span,
            "erp.instance_class",
            format!(
                "`{}` is not a DMS replication instance class (dms.<family>.<size>, family one of: {})",
                instance_class.value,
                DMS_FAMILIES.join(", ")
            ),
        );
    }
    if !(5..=6144).contains(&allocated_storage_gb.value) {
        reader.error(
            allocated_storage_gb.span,
            "erp.allocated_storage_gb",
            format!("{}: must be between 5 and 6144 GB", allocated_storage_gb.value),
        );
    }
    if tables.is_empty() {
        reader.error(tables_span, "erp.tables", "declare at least one table to replicate (`[erp.tables.NAME]`)");
    }
    let mut tables: Vec<ErpTable> = tables;
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let host = host?;
    let host_span = host.span;
    Some(DecodedErp {
        erp: Erp {
            host: host.value,
            port: port.value,
            database: database?.value,
            credentials_secret: credentials_secret?.value,
            ssl_mode: ssl_mode.value,
            instance_class: instance_class.value,
            allocated_storage_gb: allocated_storage_gb.value,
            multi_az: multi_az.value,
            start_replication: start_replication.value,
            history_gb: history_gb.value,
            tables,
        },
        host: host_span,
        tables: spans,
    })
}

fn decode_table(reader: &mut Reader<'_>, name: Spanned<String>, mut table: Table<'_>) -> Option<ErpTable> {
    let path = table.path().to_owned();
    let schema = reader.or_default(&mut table, "schema", "dbo".to_owned());
    let source_table = reader.optional::<String>(&mut table, "source_table");
    let columns_span = table.span();
    let column_tables = reader.tables(&mut table, "columns");
    let columns: Vec<Spanned<ErpColumn>> = column_tables.into_iter().filter_map(|t| decode_column(reader, t)).collect();
    reader.finish(table);

    if !is_identifier(&name.value) || name.value.len() > 63 {
        reader.error(
            name.span,
            &path,
            format!("`{}` is not a valid table name (lower-case letters, digits and _, at most 63)", name.value),
        );
    }
    let sql_name = |s: &str| !s.is_empty() && s.len() <= 128 && !s.contains(['"', '\'', ';', '[', ']', '%']);
    if !sql_name(&schema.value) {
        reader.error(
            schema.span,
            &format!("{path}.schema"),
            format!("`{}` is not a SQL Server schema name", schema.value),
        );
    }
    if let Some(t) = &source_table
        && !sql_name(&t.value)
    {
        reader.error(t.span, &format!("{path}.source_table"), format!("`{}` is not a SQL Server table name", t.value));
    }
    if columns.is_empty() {
        reader.error(columns_span, &format!("{path}.columns"), "a table needs at least one `[[columns]]` entry");
    }
    for (i, column) in columns.iter().enumerate() {
        if column.value.name == OP_COLUMN {
            reader.error(
                column.span,
                &format!("{path}.columns[{i}].name"),
                format!("`{OP_COLUMN}` is the column DMS writes first (the source operation); rename this one"),
            );
        }
        if columns[..i].iter().any(|c| c.value.name == column.value.name) {
            reader.error(
                column.span,
                &format!("{path}.columns[{i}].name"),
                format!("column `{}` is declared twice", column.value.name),
            );
        }
    }
    Some(ErpTable {
        source_table: source_table.map_or_else(|| name.value.clone(), |t| t.value),
        name: name.value,
        schema: schema.value,
        columns: columns.into_iter().map(|c| c.value).collect(),
    })
}

fn decode_column(reader: &mut Reader<'_>, mut table: Table<'_>) -> Option<Spanned<ErpColumn>> {
    let path = table.path().to_owned();
    let span = table.span();
    let name = reader.required::<String>(&mut table, "name");
    let source = reader.optional::<String>(&mut table, "source");
    let column_type = reader.required::<FieldType>(&mut table, "type");
    reader.finish(table);
    if let Some(name) = &name
        && !is_identifier(&name.value)
    {
        reader.error(
            name.span,
            &format!("{path}.name"),
            format!(
                "`{}` is not a valid column name (lower-case letters, digits and _); use `source` for the SQL \
                 Server name",
                name.value
            ),
        );
    }
    let name = name?.value;
    Some(Spanned::with_span(
        ErpColumn { source: source.map_or_else(|| name.clone(), |s| s.value), name, column_type: column_type?.value },
        span,
    ))
}
