# Audit: the logs bucket (SSE-S3: S3 server access logging cannot write into a KMS-encrypted
# bucket), the lake buckets' access logs into it, and the VPC's flow logs.

# The logs zone.

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events: the worker publishes through its own commit records
  #checkov:skip=CKV_AWS_144:one-region platform: versioning and the guarded key protect the data; cross-region replication is a disaster-recovery choice that doubles storage, left to the operator
  #checkov:skip=CKV_AWS_145:S3 server access logging cannot deliver into a bucket encrypted with a KMS key: SSE-S3
  bucket = "indutech-prod-logs-prd-4f2a"
  tags = {
    "indutech:component" = "audit"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    bucket_key_enabled = false

    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = jsonencode({
    Statement = [
      {
        Action = "s3:*"
        Condition = {
          Bool = {
            "aws:SecureTransport" = "false"
          }
        }
        Effect    = "Deny"
        Principal = "*"
        Resource = [
          "arn:aws:s3:::indutech-prod-logs-prd-4f2a",
          "arn:aws:s3:::indutech-prod-logs-prd-4f2a/*",
        ]
        Sid = "DenyInsecureTransport"
      },
      {
        Action = "s3:PutObject"
        Condition = {
          StringEquals = {
            "aws:SourceAccount" = "111122223333"
          }
        }
        Effect = "Allow"
        Principal = {
          Service = "logging.s3.amazonaws.com"
        }
        Resource = "arn:aws:s3:::indutech-prod-logs-prd-4f2a/s3/*"
        Sid      = "S3ServerAccessLogs"
      },
      {
        Action = "s3:PutObject"
        Condition = {
          StringEquals = {
            "aws:SourceAccount" = "111122223333"
            "s3:x-amz-acl"      = "bucket-owner-full-control"
          }
        }
        Effect = "Allow"
        Principal = {
          Service = "delivery.logs.amazonaws.com"
        }
        Resource = "arn:aws:s3:::indutech-prod-logs-prd-4f2a/vpc-flow-logs/AWSLogs/111122223333/*"
        Sid      = "FlowLogsWrite"
      },
      {
        Action = ["s3:GetBucketAcl", "s3:ListBucket"]
        Condition = {
          StringEquals = {
            "aws:SourceAccount" = "111122223333"
          }
        }
        Effect = "Allow"
        Principal = {
          Service = "delivery.logs.amazonaws.com"
        }
        Resource = "arn:aws:s3:::indutech-prod-logs-prd-4f2a"
        Sid      = "FlowLogsAclCheck"
      },
    ]
    Version = "2012-10-17"
  })

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "indutech-lifecycle"
    status = "Enabled"

    filter {
      prefix = ""
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 3
    }

    transition {
      days          = 60
      storage_class = "STANDARD_IA"
    }

    transition {
      days          = 365
      storage_class = "GLACIER"
    }
  }
}

resource "aws_s3_bucket_logging" "raw" {
  bucket        = aws_s3_bucket.raw.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/raw/"

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_logging" "curated" {
  bucket        = aws_s3_bucket.curated.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/curated/"

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_logging" "rejected" {
  bucket        = aws_s3_bucket.rejected.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/rejected/"

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_logging" "artifacts" {
  bucket        = aws_s3_bucket.artifacts.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/artifacts/"

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_flow_log" "vpc" {
  vpc_id                   = aws_vpc.main.id
  traffic_type             = "ALL"
  log_destination_type     = "s3"
  log_destination          = "${aws_s3_bucket.logs.arn}/vpc-flow-logs/"
  max_aggregation_interval = 600
  tags = {
    Name                 = "indutech-prod-vpc-flow-logs"
    "indutech:component" = "audit"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [aws_s3_bucket_policy.logs]
}
