# Worker: this indutech binary (var.worker_binary) as a content-addressed object in the
# artifacts bucket, the workers' IAM role (least privilege) in an instance profile, and the
# instances at fixed addresses booting cloud-init/worker.yaml: systemd unit `indutech-worker`,
# the environment and stream files, the binary fetched and checked against its SHA-256.
# A new binary is a new object and new user data, so Terraform replaces every instance.

locals {
  worker_binary_sha256 = filesha256(var.worker_binary)
}

resource "aws_s3_object" "worker_binary" {
  bucket       = aws_s3_bucket.artifacts.id
  key          = "worker/indutech-${local.worker_binary_sha256}"
  source       = var.worker_binary
  content_type = "application/octet-stream"
  metadata = {
    sha256 = local.worker_binary_sha256
  }

  depends_on = [
    aws_s3_bucket_versioning.artifacts,
    aws_s3_bucket_server_side_encryption_configuration.artifacts,
  ]
}

resource "aws_iam_role" "worker" {
  name        = "indutech-staging-worker"
  description = "indutech staging: the streaming worker's instances"
  assume_role_policy = jsonencode({
    Statement = [
      {
        Action = "sts:AssumeRole"
        Effect = "Allow"
        Principal = {
          Service = "ec2.amazonaws.com"
        }
      },
    ]
    Version = "2012-10-17"
  })
  tags = {
    "indutech:component" = "worker"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_iam_role_policy" "worker" {
  name = "worker"
  role = aws_iam_role.worker.id
  policy = jsonencode({
    Statement = [
      {
        Action   = ["s3:GetObject"]
        Effect   = "Allow"
        Resource = ["arn:aws:s3:::indutech-staging-artifacts-stg-4f2a/worker/*"]
        Sid      = "ReadWorkerBinaries"
      },
      {
        Action = ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"]
        Condition = {
          StringLike = {
            "s3:prefix" = ["_indutech/commits/*", "_indutech/staging/*"]
          }
        }
        Effect = "Allow"
        Resource = [
          "arn:aws:s3:::indutech-staging-curated-stg-4f2a",
          "arn:aws:s3:::indutech-staging-rejected-stg-4f2a",
        ]
        Sid = "ListCommitsAndStaging"
      },
      {
        Action   = ["s3:GetObject", "s3:PutObject"]
        Effect   = "Allow"
        Resource = ["arn:aws:s3:::indutech-staging-curated-stg-4f2a/_indutech/commits/*"]
        Sid      = "CommitRecords"
      },
      {
        Action = [
          "s3:GetObject",
          "s3:GetObjectVersion",
          "s3:PutObject",
          "s3:DeleteObject",
          "s3:DeleteObjectVersion",
          "s3:AbortMultipartUpload",
        ]
        Effect = "Allow"
        Resource = [
          "arn:aws:s3:::indutech-staging-curated-stg-4f2a/_indutech/staging/*",
          "arn:aws:s3:::indutech-staging-rejected-stg-4f2a/_indutech/staging/*",
        ]
        Sid = "StagedFiles"
      },
      {
        Action = ["s3:GetObject", "s3:PutObject"]
        Effect = "Allow"
        Resource = [
          "arn:aws:s3:::indutech-staging-curated-stg-4f2a/client_tickets/*",
          "arn:aws:s3:::indutech-staging-rejected-stg-4f2a/client_tickets/*",
          "arn:aws:s3:::indutech-staging-curated-stg-4f2a/incident_events/*",
          "arn:aws:s3:::indutech-staging-rejected-stg-4f2a/incident_events/*",
          "arn:aws:s3:::indutech-staging-curated-stg-4f2a/sensor_readings/*",
          "arn:aws:s3:::indutech-staging-rejected-stg-4f2a/sensor_readings/*",
        ]
        Sid = "PublishStreamObjects"
      },
      {
        Action = [
          "glue:GetDatabase",
          "glue:GetTable",
          "glue:GetPartitions",
          "glue:BatchCreatePartition",
        ]
        Effect = "Allow"
        Resource = [
          "arn:aws:glue:eu-west-3:$${aws:PrincipalAccount}:catalog",
          "arn:aws:glue:eu-west-3:$${aws:PrincipalAccount}:database/indutech_staging",
          "arn:aws:glue:eu-west-3:$${aws:PrincipalAccount}:table/indutech_staging/client_tickets",
          "arn:aws:glue:eu-west-3:$${aws:PrincipalAccount}:table/indutech_staging/incident_events",
          "arn:aws:glue:eu-west-3:$${aws:PrincipalAccount}:table/indutech_staging/sensor_readings",
        ]
        Sid = "RegisterPartitions"
      },
      {
        Action = ["kms:Decrypt", "kms:GenerateDataKey"]
        Condition = {
          "ForAnyValue:StringEquals" = {
            "kms:ResourceAliases" = ["alias/indutech-staging-lake"]
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
        Action = ["secretsmanager:GetSecretValue"]
        Effect = "Allow"
        Resource = [
          "arn:aws:secretsmanager:eu-west-3:$${aws:PrincipalAccount}:secret:indutech/staging/kafka-worker-??????",
        ]
        Sid = "ReadKafkaCredentials"
      },
    ]
    Version = "2012-10-17"
  })
}

resource "aws_iam_instance_profile" "worker" {
  name = "indutech-staging-worker"
  role = aws_iam_role.worker.name
  tags = {
    "indutech:component" = "worker"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_instance" "worker_0" {
  #checkov:skip=CKV_AWS_126:monitoring is the worker's own metrics (lag, phases; operations CIDRs); 1-minute EC2 metrics have no consumer and cost per instance
  #checkov:skip=CKV_AWS_135:current instance types (c7i, m7i, c7g...) are EBS-optimized by default; the argument changes nothing
  ami                         = "ami-0a7d80731ae1b2435"
  instance_type               = "c7i.large"
  availability_zone           = "eu-west-3a"
  subnet_id                   = aws_subnet.eu_west_3a.id
  private_ip                  = "10.30.0.11"
  vpc_security_group_ids      = [aws_security_group.worker.id]
  iam_instance_profile        = aws_iam_instance_profile.worker.name
  user_data_base64            = base64gzip(replace(file("${path.module}/cloud-init/worker.yaml"), "@WORKER_BINARY_SHA256@", local.worker_binary_sha256))
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted = true
  }

  tags = {
    Name                 = "indutech-staging-worker-0"
    "indutech:component" = "worker"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
  volume_tags = {
    Name                 = "indutech-staging-worker-0"
    "indutech:component" = "worker"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }

  depends_on = [
    aws_s3_bucket.curated,
    aws_s3_bucket.rejected,
    kafka_topic.client_tickets,
    aws_glue_catalog_table.client_tickets,
    kafka_topic.incident_events,
    aws_glue_catalog_table.incident_events,
    kafka_topic.sensor_readings,
    aws_glue_catalog_table.sensor_readings,
    aws_s3_object.worker_binary,
    aws_iam_role_policy.worker,
  ]
}

resource "aws_instance" "worker_1" {
  #checkov:skip=CKV_AWS_126:monitoring is the worker's own metrics (lag, phases; operations CIDRs); 1-minute EC2 metrics have no consumer and cost per instance
  #checkov:skip=CKV_AWS_135:current instance types (c7i, m7i, c7g...) are EBS-optimized by default; the argument changes nothing
  ami                         = "ami-0a7d80731ae1b2435"
  instance_type               = "c7i.large"
  availability_zone           = "eu-west-3b"
  subnet_id                   = aws_subnet.eu_west_3b.id
  private_ip                  = "10.30.16.11"
  vpc_security_group_ids      = [aws_security_group.worker.id]
  iam_instance_profile        = aws_iam_instance_profile.worker.name
  user_data_base64            = base64gzip(replace(file("${path.module}/cloud-init/worker.yaml"), "@WORKER_BINARY_SHA256@", local.worker_binary_sha256))
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted = true
  }

  tags = {
    Name                 = "indutech-staging-worker-1"
    "indutech:component" = "worker"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
  volume_tags = {
    Name                 = "indutech-staging-worker-1"
    "indutech:component" = "worker"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }

  depends_on = [
    aws_s3_bucket.curated,
    aws_s3_bucket.rejected,
    kafka_topic.client_tickets,
    aws_glue_catalog_table.client_tickets,
    kafka_topic.incident_events,
    aws_glue_catalog_table.incident_events,
    kafka_topic.sensor_readings,
    aws_glue_catalog_table.sensor_readings,
    aws_s3_object.worker_binary,
    aws_iam_role_policy.worker,
  ]
}
