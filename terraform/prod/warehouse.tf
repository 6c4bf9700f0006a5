# Warehouse: the Redshift cluster (encrypted, private, master password managed by Redshift in
# Secrets Manager), its subnet group, the Spectrum role (least privilege on the lake and the
# catalog) and the external schema over the Glue database, created through the Data API.

resource "aws_iam_role" "spectrum" {
  name        = "indutech-prod-spectrum"
  description = "indutech prod: Redshift Spectrum reads the lake"
  assume_role_policy = jsonencode({
    Statement = [
      {
        Action = "sts:AssumeRole"
        Effect = "Allow"
        Principal = {
          Service = "redshift.amazonaws.com"
        }
      },
    ]
    Version = "2012-10-17"
  })
  tags = {
    "indutech:component" = "warehouse"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_iam_role_policy" "spectrum_lake_read" {
  name = "lake-read"
  role = aws_iam_role.spectrum.id
  policy = jsonencode({
    Statement = [
      {
        Action = ["s3:ListBucket", "s3:GetBucketLocation"]
        Condition = {
          StringLike = {
            "s3:prefix" = [
              "client_tickets/*",
              "incident_events/*",
              "sensor_readings/*",
              "erp/dbo/stations/*",
            ]
          }
        }
        Effect = "Allow"
        Resource = [
          "arn:aws:s3:::indutech-prod-curated-prd-4f2a",
          "arn:aws:s3:::indutech-prod-raw-prd-4f2a",
        ]
        Sid = "ListStreamPrefixes"
      },
      {
        Action = ["s3:GetObject"]
        Effect = "Allow"
        Resource = [
          "arn:aws:s3:::indutech-prod-curated-prd-4f2a/client_tickets/*",
          "arn:aws:s3:::indutech-prod-curated-prd-4f2a/incident_events/*",
          "arn:aws:s3:::indutech-prod-curated-prd-4f2a/sensor_readings/*",
          "arn:aws:s3:::indutech-prod-raw-prd-4f2a/erp/dbo/stations/*",
        ]
        Sid = "ReadStreamObjects"
      },
      {
        Action = [
          "glue:GetDatabase",
          "glue:GetTable",
          "glue:GetTables",
          "glue:GetPartition",
          "glue:GetPartitions",
          "glue:BatchGetPartition",
        ]
        Effect = "Allow"
        Resource = [
          "arn:aws:glue:eu-west-3:$${aws:PrincipalAccount}:catalog",
          "arn:aws:glue:eu-west-3:$${aws:PrincipalAccount}:database/indutech_prod",
          "arn:aws:glue:eu-west-3:$${aws:PrincipalAccount}:table/indutech_prod/*",
        ]
        Sid = "ReadCatalog"
      },
      {
        Action = ["kms:Decrypt"]
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
        Sid      = "DecryptLakeThroughS3"
      },
    ]
    Version = "2012-10-17"
  })
}

resource "aws_redshift_subnet_group" "main" {
  name        = "indutech-prod-warehouse"
  description = "indutech prod: the warehouse's private subnets"
  subnet_ids = [
    aws_subnet.eu_west_3a.id,
    aws_subnet.eu_west_3b.id,
    aws_subnet.eu_west_3c.id,
  ]
  tags = {
    "indutech:component" = "warehouse"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

# TLS required and every query logged; static parameters: an existing cluster takes them at
# its next reboot.
resource "aws_redshift_parameter_group" "main" {
  name        = "indutech-prod-warehouse"
  family      = "redshift-2.0"
  description = "indutech prod: TLS required, user activity logged"

  parameter {
    name  = "enable_user_activity_logging"
    value = "true"
  }

  parameter {
    name  = "require_ssl"
    value = "true"
  }

  tags = {
    "indutech:component" = "warehouse"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_redshift_cluster" "main" {
  #checkov:skip=CKV_AWS_71:audit logging is the aws_redshift_logging resource below (AWS provider 6 removed the cluster's logging block)
  #checkov:skip=CKV_AWS_142:encrypted with Redshift's AWS-managed key: the final snapshot outlives destroy and must stay restorable, which the lake key scheduled for deletion would prevent
  cluster_identifier           = "indutech-prod-warehouse"
  cluster_type                 = "multi-node"
  node_type                    = "ra3.4xlarge"
  number_of_nodes              = 4
  database_name                = "indutech"
  master_username              = "indutech_admin"
  manage_master_password       = true
  encrypted                    = true
  publicly_accessible          = false
  enhanced_vpc_routing         = true
  cluster_subnet_group_name    = aws_redshift_subnet_group.main.name
  cluster_parameter_group_name = aws_redshift_parameter_group.main.name
  vpc_security_group_ids       = [aws_security_group.warehouse.id]
  iam_roles                    = [aws_iam_role.spectrum.arn]
  # indutech names the final snapshot `<cluster>-final-<UTC time>` at destroy.
  final_snapshot_identifier = "indutech-prod-warehouse-final"
  tags = {
    "indutech:component" = "warehouse"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [
    aws_iam_role_policy.spectrum_lake_read,
    aws_vpc_endpoint.glue,
  ]
}

# Audit logging into CloudWatch Logs (AWS provider 6: a resource of its own, no longer a
# `logging` block of the cluster).
resource "aws_redshift_logging" "main" {
  cluster_identifier   = aws_redshift_cluster.main.id
  log_destination_type = "cloudwatch"
  log_exports          = ["connectionlog", "useractivitylog", "userlog"]
}

# `CREATE EXTERNAL SCHEMA IF NOT EXISTS`: one statement (Redshift refuses external DDL in a
# transaction), run again harmlessly when the resource is replaced.
resource "aws_redshiftdata_statement" "external_schema" {
  cluster_identifier = aws_redshift_cluster.main.cluster_identifier
  database           = "indutech"
  db_user            = "indutech_admin"
  sql                = "CREATE EXTERNAL SCHEMA IF NOT EXISTS lake FROM DATA CATALOG DATABASE 'indutech_prod' IAM_ROLE '${aws_iam_role.spectrum.arn}'"

  depends_on = [aws_glue_catalog_database.main]
}
