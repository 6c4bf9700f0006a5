//! Glue Data Catalog: the environment's database and one external Parquet table per stream,
//! partitioned by `dt`. Tables are found by name in the database; a table of a stream that is
//! no longer configured is an orphan (deleted by apply).

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_glue::types::{Column, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};
use serde_json::{Value, json};

use super::{Context, code, deleted, sdk_error, str_attr};
use crate::model::address;
use crate::plan::kind::GlueKind;
use crate::plan::{Attributes, Change, Component, Observed, Orphan, Resource};

const NOT_FOUND: &str = "EntityNotFoundException";

fn database_of(ctx: &Context) -> String {
    crate::model::glue_database_name(&ctx.environment)
}

fn columns_value(columns: &[Column]) -> Value {
    Value::Array(columns.iter().map(|c| json!({"name": c.name(), "type": c.r#type().unwrap_or_default()})).collect())
}

pub(super) async fn observe(ctx: &Context, kind: GlueKind, resource: &Resource) -> anyhow::Result<Observed> {
    let glue = ctx.aws.glue();
    match kind {
        GlueKind::Database => match glue.get_database().name(&resource.name).send().await {
            Ok(out) => {
                let description = out.database().and_then(|d| d.description()).unwrap_or_default();
                let attributes: Attributes =
                    BTreeMap::from([("description".into(), json!(description)), ("name".into(), json!(resource.name))]);
                Ok(Observed::Present { id: resource.name.clone(), attributes })
            }
            Err(err) if code(&err) == Some(NOT_FOUND) => Ok(Observed::Absent),
            Err(err) => Err(sdk_error(ctx, "glue", "GetDatabase", &resource.name, err)),
        },
        GlueKind::Table => {
            let database = database_of(ctx);
            let out = match glue.get_table().database_name(&database).name(&resource.name).send().await {
                Ok(out) => out,
                Err(err) if code(&err) == Some(NOT_FOUND) => return Ok(Observed::Absent),
                Err(err) => return Err(sdk_error(ctx, "glue", "GetTable", &resource.name, err)),
            };
            let table = out.table().context("GetTable returned no table")?;
            Ok(Observed::Present { id: format!("{database}.{}", resource.name), attributes: table_attributes(table) })
        }
    }
}

fn table_attributes(table: &aws_sdk_glue::types::Table) -> Attributes {
    let sd = table.storage_descriptor();
    let parameters: BTreeMap<&str, &str> =
        table.parameters().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    [
        ("columns", columns_value(sd.map(|s| s.columns()).unwrap_or_default())),
        ("input_format", json!(sd.and_then(|s| s.input_format()))),
        ("location", json!(sd.and_then(|s| s.location()))),
        ("output_format", json!(sd.and_then(|s| s.output_format()))),
        ("parameters", json!(parameters)),
        ("partition_keys", columns_value(table.partition_keys())),
        ("serialization_library", json!(sd.and_then(|s| s.serde_info()).and_then(|s| s.serialization_library()))),
        ("table_type", json!(table.table_type())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn columns(value: &Value) -> anyhow::Result<Vec<Column>> {
    value
        .as_array()
        .context("columns must be a list")?
        .iter()
        .map(|c| {
            Ok(Column::builder()
                .name(c["name"].as_str().unwrap_or_default())
                .r#type(c["type"].as_str().unwrap_or_default())
                .build()?)
        })
        .collect()
}

fn table_input(resource: &Resource) -> anyhow::Result<TableInput> {
    let a = &resource.attributes;
    let sd = StorageDescriptor::builder()
        .set_columns(Some(columns(&a["columns"])?))
        .location(str_attr(resource, "location")?)
        .input_format(str_attr(resource, "input_format")?)
        .output_format(str_attr(resource, "output_format")?)
        .serde_info(SerDeInfo::builder().serialization_library(str_attr(resource, "serialization_library")?).build())
        .build();
    let parameters = a["parameters"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect());
    Ok(TableInput::builder()
        .name(&resource.name)
        .table_type(str_attr(resource, "table_type")?)
        .set_parameters(parameters)
        .set_partition_keys(Some(columns(&a["partition_keys"])?))
        .storage_descriptor(sd)
        .build()?)
}

fn database_input(resource: &Resource) -> anyhow::Result<DatabaseInput> {
    Ok(DatabaseInput::builder().name(&resource.name).description(str_attr(resource, "description")?).build()?)
}

pub(super) async fn create(ctx: &Context, kind: GlueKind, resource: &Resource) -> anyhow::Result<()> {
    let glue = ctx.aws.glue();
    match kind {
        GlueKind::Database => {
            match glue.create_database().database_input(database_input(resource)?).send().await {
                Ok(_) => {}
                Err(err) if code(&err) == Some("AlreadyExistsException") => {}
                Err(err) => return Err(sdk_error(ctx, "glue", "CreateDatabase", &resource.name, err)),
            }
            ctx.set_id(&resource.address, &resource.name);
        }
        GlueKind::Table => {
            let database = database_of(ctx);
            glue.create_table()
                .database_name(&database)
                .table_input(table_input(resource)?)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "glue", "CreateTable", &resource.name, e))?;
            ctx.set_id(&resource.address, &format!("{database}.{}", resource.name));
        }
    }
    Ok(())
}

pub(super) async fn update(ctx: &Context, kind: GlueKind, resource: &Resource, _change: &Change) -> anyhow::Result<()> {
    let glue = ctx.aws.glue();
    match kind {
        GlueKind::Database => {
            glue.update_database()
                .name(&resource.name)
                .database_input(database_input(resource)?)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "glue", "UpdateDatabase", &resource.name, e))?;
        }
        GlueKind::Table => {
            glue.update_table()
                .database_name(database_of(ctx))
                .table_input(table_input(resource)?)
                .send()
                .await
                .map_err(|e| sdk_error(ctx, "glue", "UpdateTable", &resource.name, e))?;
        }
    }
    Ok(())
}

pub(super) async fn delete(ctx: &Context, kind: GlueKind, change: &Change) -> anyhow::Result<()> {
    let glue = ctx.aws.glue();
    match kind {
        GlueKind::Database => {
            let result = glue.delete_database().name(&change.name).send().await;
            deleted(ctx, "glue", "DeleteDatabase", &change.name, result, |c| c == NOT_FOUND)
        }
        GlueKind::Table => {
            let result = glue.delete_table().database_name(database_of(ctx)).name(&change.name).send().await;
            deleted(ctx, "glue", "DeleteTable", &change.name, result, |c| c == NOT_FOUND)
        }
    }
}

/// Tables in the environment's database that no configured stream describes.
pub(super) async fn orphans(ctx: &Context, desired: &[Resource]) -> anyhow::Result<Vec<Orphan>> {
    let glue = ctx.aws.glue();
    let database = database_of(ctx);
    let mut out = Vec::new();
    let mut pages = glue.get_tables().database_name(&database).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(err) if code(&err) == Some(NOT_FOUND) => return Ok(out),
            Err(err) => return Err(sdk_error(ctx, "glue", "GetTables", &database, err)),
        };
        for table in page.table_list() {
            let address = address::glue_table(table.name());
            if desired.iter().any(|r| r.address == address) {
                continue;
            }
            out.push(Orphan {
                address,
                component: Component::Catalog,
                name: table.name().to_owned(),
                id: format!("{database}.{}", table.name()),
                attributes: table_attributes(table),
                depends_on: vec![address::GLUE_DATABASE.into()],
            });
        }
    }
    Ok(out)
}
