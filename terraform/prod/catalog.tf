# Catalog: the Glue database of the curated zone and one table per stream (columns from the
# stream's definition, `dt` partition key, Parquet SerDe). The worker adds the partitions.

resource "aws_glue_catalog_database" "main" {
  name        = "indutech_prod"
  description = "indutech prod: the lake's curated zone"
}

resource "aws_glue_catalog_table" "client_tickets" {
  name          = "client_tickets"
  database_name = aws_glue_catalog_database.main.name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    classification        = "parquet"
    "parquet.compression" = "ZSTD"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://indutech-prod-curated-prd-4f2a/client_tickets/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "ticket_id"
      type = "string"
    }

    columns {
      name = "client_id"
      type = "string"
    }

    columns {
      name = "created_at"
      type = "timestamp"
    }

    columns {
      name = "channel"
      type = "string"
    }

    columns {
      name = "priority"
      type = "string"
    }

    columns {
      name = "subject"
      type = "string"
    }

    columns {
      name = "body"
      type = "string"
    }

    columns {
      name = "customer_tier"
      type = "string"
    }

    columns {
      name = "category"
      type = "string"
    }

    columns {
      name = "ingested_at"
      type = "timestamp"
    }

    columns {
      name = "kafka_partition"
      type = "int"
    }

    columns {
      name = "kafka_offset"
      type = "bigint"
    }
  }
}

resource "aws_glue_catalog_table" "incident_events" {
  name          = "incident_events"
  database_name = aws_glue_catalog_database.main.name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    classification        = "parquet"
    "parquet.compression" = "ZSTD"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://indutech-prod-curated-prd-4f2a/incident_events/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "number"
      type = "string"
    }

    columns {
      name = "incident_state"
      type = "string"
    }

    columns {
      name = "active"
      type = "boolean"
    }

    columns {
      name = "reassignment_count"
      type = "int"
    }

    columns {
      name = "reopen_count"
      type = "int"
    }

    columns {
      name = "sys_mod_count"
      type = "int"
    }

    columns {
      name = "made_sla"
      type = "boolean"
    }

    columns {
      name = "caller_id"
      type = "string"
    }

    columns {
      name = "opened_by"
      type = "string"
    }

    columns {
      name = "opened_at"
      type = "timestamp"
    }

    columns {
      name = "sys_created_by"
      type = "string"
    }

    columns {
      name = "sys_created_at"
      type = "timestamp"
    }

    columns {
      name = "sys_updated_by"
      type = "string"
    }

    columns {
      name = "sys_updated_at"
      type = "timestamp"
    }

    columns {
      name = "contact_type"
      type = "string"
    }

    columns {
      name = "location"
      type = "string"
    }

    columns {
      name = "category"
      type = "string"
    }

    columns {
      name = "subcategory"
      type = "string"
    }

    columns {
      name = "u_symptom"
      type = "string"
    }

    columns {
      name = "cmdb_ci"
      type = "string"
    }

    columns {
      name = "impact"
      type = "string"
    }

    columns {
      name = "urgency"
      type = "string"
    }

    columns {
      name = "priority"
      type = "string"
    }

    columns {
      name = "assignment_group"
      type = "string"
    }

    columns {
      name = "assigned_to"
      type = "string"
    }

    columns {
      name = "knowledge"
      type = "boolean"
    }

    columns {
      name = "u_priority_confirmation"
      type = "boolean"
    }

    columns {
      name = "notify"
      type = "string"
    }

    columns {
      name = "problem_id"
      type = "string"
    }

    columns {
      name = "rfc"
      type = "string"
    }

    columns {
      name = "vendor"
      type = "string"
    }

    columns {
      name = "caused_by"
      type = "string"
    }

    columns {
      name = "closed_code"
      type = "string"
    }

    columns {
      name = "resolved_by"
      type = "string"
    }

    columns {
      name = "resolved_at"
      type = "timestamp"
    }

    columns {
      name = "closed_at"
      type = "timestamp"
    }

    columns {
      name = "ingested_at"
      type = "timestamp"
    }

    columns {
      name = "kafka_partition"
      type = "int"
    }

    columns {
      name = "kafka_offset"
      type = "bigint"
    }
  }
}

resource "aws_glue_catalog_table" "sensor_readings" {
  name          = "sensor_readings"
  database_name = aws_glue_catalog_database.main.name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    classification        = "parquet"
    "parquet.compression" = "ZSTD"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://indutech-prod-curated-prd-4f2a/sensor_readings/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "row_number"
      type = "bigint"
    }

    columns {
      name = "year"
      type = "int"
    }

    columns {
      name = "month"
      type = "int"
    }

    columns {
      name = "day"
      type = "int"
    }

    columns {
      name = "hour"
      type = "int"
    }

    columns {
      name = "pm2_5"
      type = "double"
    }

    columns {
      name = "pm10"
      type = "double"
    }

    columns {
      name = "so2"
      type = "double"
    }

    columns {
      name = "no2"
      type = "double"
    }

    columns {
      name = "co"
      type = "double"
    }

    columns {
      name = "o3"
      type = "double"
    }

    columns {
      name = "temp"
      type = "double"
    }

    columns {
      name = "pres"
      type = "double"
    }

    columns {
      name = "dewp"
      type = "double"
    }

    columns {
      name = "rain"
      type = "double"
    }

    columns {
      name = "wind_direction"
      type = "string"
    }

    columns {
      name = "wind_speed"
      type = "double"
    }

    columns {
      name = "station"
      type = "string"
    }

    columns {
      name = "observed_at"
      type = "timestamp"
    }

    columns {
      name = "ingested_at"
      type = "timestamp"
    }

    columns {
      name = "kafka_partition"
      type = "int"
    }

    columns {
      name = "kafka_offset"
      type = "bigint"
    }
  }
}

resource "aws_glue_catalog_table" "stations" {
  name          = "stations"
  database_name = aws_glue_catalog_database.main.name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    classification = "parquet"
  }

  storage_descriptor {
    location      = "s3://indutech-prod-raw-prd-4f2a/erp/dbo/stations/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    columns {
      name = "op"
      type = "string"
    }

    columns {
      name = "station"
      type = "string"
    }

    columns {
      name = "first_reading_at"
      type = "timestamp"
    }

    columns {
      name = "last_reading_at"
      type = "timestamp"
    }

    columns {
      name = "hourly_rows"
      type = "bigint"
    }

    columns {
      name = "pm2_5_missing_hours"
      type = "int"
    }
  }
}
