# Migration: AWS DMS replicates the factory's ERP tables (SQL Server, through the VPN) into the
# raw zone's erp/ folder as Parquet, full load then ongoing changes. The source's login stays in
# the ERP owners' secret: DMS reads it through the role below. Before the first subnet group
# of an account, DMS needs the account-wide role `dms-vpc-role` (AWS managed policy
# AmazonDMSVPCManagementRole); it is shared by every DMS user of the account, so neither
# indutech nor this configuration creates it.

resource "aws_iam_role" "dms" {
  name        = "indutech-prod-dms"
  description = "indutech prod: DMS writes the ERP tables into the raw zone"
  assume_role_policy = jsonencode({
    Statement = [
      {
        Action = "sts:AssumeRole"
        Effect = "Allow"
        Principal = {
          Service = ["dms.amazonaws.com", "dms.eu-west-3.amazonaws.com"]
        }
      },
    ]
    Version = "2012-10-17"
  })
  tags = {
    "indutech:component" = "migration"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_iam_role_policy" "dms" {
  name = "erp-to-lake"
  role = aws_iam_role.dms.id
  policy = jsonencode({
    Statement = [
      {
        Action = ["s3:ListBucket", "s3:GetBucketLocation"]
        Condition = {
          StringLike = {
            "s3:prefix" = ["erp/*"]
          }
        }
        Effect   = "Allow"
        Resource = ["arn:aws:s3:::indutech-prod-raw-prd-4f2a"]
        Sid      = "ListErpFolder"
      },
      {
        Action   = ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging"]
        Effect   = "Allow"
        Resource = ["arn:aws:s3:::indutech-prod-raw-prd-4f2a/erp/*"]
        Sid      = "WriteErpFolder"
      },
      {
        Action = ["kms:Decrypt", "kms:GenerateDataKey"]
        Condition = {
          "ForAnyValue:StringEquals" = {
            "kms:ResourceAliases" = ["alias/indutech-prod-lake"]
          }
          StringEquals = {
            "kms:ViaService" = "s3.eu-west-3.amazonaws.com"
          }
        }
        Effect   = "Allow"
        Resource = ["*"]
        Sid      = "LakeKeyThroughS3"
      },
      {
        Action = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Effect = "Allow"
        Resource = [
          "arn:aws:secretsmanager:eu-west-3:$${aws:PrincipalAccount}:secret:erp/prod/dms-reader-??????",
        ]
        Sid = "ReadErpCredentials"
      },
    ]
    Version = "2012-10-17"
  })
}

resource "aws_dms_replication_subnet_group" "erp" {
  replication_subnet_group_id          = "indutech-prod-erp"
  replication_subnet_group_description = "indutech prod: the replication instance's private subnets"
  subnet_ids = [
    aws_subnet.eu_west_3a.id,
    aws_subnet.eu_west_3b.id,
    aws_subnet.eu_west_3c.id,
  ]
}

resource "aws_dms_replication_instance" "erp" {
  replication_instance_id     = "indutech-prod-erp"
  replication_instance_class  = "dms.r6i.2xlarge"
  allocated_storage           = 1000
  multi_az                    = true
  auto_minor_version_upgrade  = true
  publicly_accessible         = false
  kms_key_arn                 = aws_kms_key.lake.arn
  replication_subnet_group_id = aws_dms_replication_subnet_group.erp.id
  vpc_security_group_ids      = [aws_security_group.erp.id]
  apply_immediately           = true
  tags = {
    "indutech:component" = "migration"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [
    aws_vpc_endpoint.s3,
    aws_vpc_endpoint.secretsmanager,
  ]
}

data "aws_secretsmanager_secret" "erp_credentials" {
  name = "erp/prod/dms-reader"
}

resource "aws_dms_endpoint" "erp_source" {
  endpoint_id                     = "indutech-prod-erp-source"
  endpoint_type                   = "source"
  engine_name                     = "sqlserver"
  database_name                   = "erp"
  secrets_manager_arn             = data.aws_secretsmanager_secret.erp_credentials.arn
  secrets_manager_access_role_arn = aws_iam_role.dms.arn
  ssl_mode                        = "require"
  kms_key_arn                     = aws_kms_key.lake.arn
  tags = {
    "indutech:component" = "migration"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [aws_iam_role_policy.dms]
}

resource "aws_dms_s3_endpoint" "erp_target" {
  endpoint_id                       = "indutech-prod-erp-target"
  endpoint_type                     = "target"
  bucket_name                       = aws_s3_bucket.raw.bucket
  bucket_folder                     = "erp"
  data_format                       = "parquet"
  parquet_version                   = "parquet-2-0"
  encryption_mode                   = "SSE_KMS"
  server_side_encryption_kms_key_id = aws_kms_key.lake.arn
  include_op_for_full_load          = true
  kms_key_arn                       = aws_kms_key.lake.arn
  service_access_role_arn           = aws_iam_role.dms.arn
  tags = {
    "indutech:component" = "migration"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [aws_iam_role_policy.dms]
}

resource "aws_dms_replication_task" "erp" {
  replication_task_id      = "indutech-prod-erp"
  migration_type           = "full-load-and-cdc"
  replication_instance_arn = aws_dms_replication_instance.erp.replication_instance_arn
  source_endpoint_arn      = aws_dms_endpoint.erp_source.endpoint_arn
  target_endpoint_arn      = aws_dms_s3_endpoint.erp_target.endpoint_arn
  start_replication_task   = true
  table_mappings = jsonencode({
    rules = [
      {
        object-locator = {
          schema-name = "dbo"
          table-name  = "MonitoringStations"
        }
        rule-action = "include"
        rule-id     = "1"
        rule-name   = "include-stations"
        rule-type   = "selection"
      },
      {
        object-locator = {
          schema-name = "dbo"
        }
        rule-action = "convert-lowercase"
        rule-id     = "2"
        rule-name   = "schema-lower-dbo"
        rule-target = "schema"
        rule-type   = "transformation"
      },
      {
        object-locator = {
          schema-name = "dbo"
          table-name  = "MonitoringStations"
        }
        rule-action = "rename"
        rule-id     = "3"
        rule-name   = "table-stations"
        rule-target = "table"
        rule-type   = "transformation"
        value       = "stations"
      },
      {
        object-locator = {
          column-name = "StationName"
          schema-name = "dbo"
          table-name  = "MonitoringStations"
        }
        rule-action = "rename"
        rule-id     = "4"
        rule-name   = "column-stations-station"
        rule-target = "column"
        rule-type   = "transformation"
        value       = "station"
      },
      {
        object-locator = {
          column-name = "FirstReadingAt"
          schema-name = "dbo"
          table-name  = "MonitoringStations"
        }
        rule-action = "rename"
        rule-id     = "5"
        rule-name   = "column-stations-first_reading_at"
        rule-target = "column"
        rule-type   = "transformation"
        value       = "first_reading_at"
      },
      {
        object-locator = {
          column-name = "LastReadingAt"
          schema-name = "dbo"
          table-name  = "MonitoringStations"
        }
        rule-action = "rename"
        rule-id     = "6"
        rule-name   = "column-stations-last_reading_at"
        rule-target = "column"
        rule-type   = "transformation"
        value       = "last_reading_at"
      },
      {
        object-locator = {
          column-name = "HourlyRows"
          schema-name = "dbo"
          table-name  = "MonitoringStations"
        }
        rule-action = "rename"
        rule-id     = "7"
        rule-name   = "column-stations-hourly_rows"
        rule-target = "column"
        rule-type   = "transformation"
        value       = "hourly_rows"
      },
      {
        object-locator = {
          column-name = "PM25MissingHours"
          schema-name = "dbo"
          table-name  = "MonitoringStations"
        }
        rule-action = "rename"
        rule-id     = "8"
        rule-name   = "column-stations-pm2_5_missing_hours"
        rule-target = "column"
        rule-type   = "transformation"
        value       = "pm2_5_missing_hours"
      },
    ]
  })
  tags = {
    "indutech:component" = "migration"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}
