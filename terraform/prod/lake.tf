# Lake: the KMS key and the raw, curated, rejected and artifacts buckets, each versioned,
# encrypted with the key, closed to the public, TLS-only, with its lifecycle. A bucket that holds
# objects is not deleted (no force_destroy), as with indutech without --force-delete-data.

resource "aws_kms_key" "lake" {
  description         = "indutech prod: lake buckets' default encryption"
  enable_key_rotation = true
  # Disabling the key or scheduling its deletion is denied to all but lake.key_administrators.
  policy = jsonencode({
    Id = "indutech-lake-key"
    Statement = [
      {
        Action = "kms:*"
        Effect = "Allow"
        Principal = {
          AWS = "arn:aws:iam::111122223333:root"
        }
        Resource = "*"
        Sid      = "AccountIamPolicies"
      },
      {
        Action = ["kms:DisableKey", "kms:ScheduleKeyDeletion"]
        Condition = {
          ArnNotEquals = {
            "aws:PrincipalArn" = ["arn:aws:iam::111122223333:role/platform-admin"]
          }
        }
        Effect = "Deny"
        Principal = {
          AWS = "*"
        }
        Resource = "*"
        Sid      = "GuardKeyDeletion"
      },
    ]
    Version = "2012-10-17"
  })
  tags = {
    Name                 = "indutech-prod-lake"
    "indutech:component" = "lake"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_kms_alias" "lake" {
  name          = "alias/indutech-prod-lake"
  target_key_id = aws_kms_key.lake.key_id
}

# The raw zone.

resource "aws_s3_bucket" "raw" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events: the worker publishes through its own commit records
  #checkov:skip=CKV_AWS_144:one-region platform: versioning and the guarded key protect the data; cross-region replication is a disaster-recovery choice that doubles storage, left to the operator
  bucket = "indutech-prod-raw-prd-4f2a"
  tags = {
    "indutech:component" = "lake"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [aws_kms_key.lake]
}

resource "aws_s3_bucket_versioning" "raw" {
  bucket = aws_s3_bucket.raw.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "raw" {
  bucket = aws_s3_bucket.raw.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_alias.lake.name
    }
  }
}

resource "aws_s3_bucket_public_access_block" "raw" {
  bucket                  = aws_s3_bucket.raw.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "raw" {
  bucket = aws_s3_bucket.raw.id
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
          "arn:aws:s3:::indutech-prod-raw-prd-4f2a",
          "arn:aws:s3:::indutech-prod-raw-prd-4f2a/*",
        ]
        Sid = "DenyInsecureTransport"
      },
    ]
    Version = "2012-10-17"
  })

  depends_on = [aws_s3_bucket_public_access_block.raw]
}

resource "aws_s3_bucket_lifecycle_configuration" "raw" {
  bucket = aws_s3_bucket.raw.id

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

# The curated zone.

resource "aws_s3_bucket" "curated" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events: the worker publishes through its own commit records
  #checkov:skip=CKV_AWS_144:one-region platform: versioning and the guarded key protect the data; cross-region replication is a disaster-recovery choice that doubles storage, left to the operator
  bucket = "indutech-prod-curated-prd-4f2a"
  tags = {
    "indutech:component" = "lake"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [aws_kms_key.lake]
}

resource "aws_s3_bucket_versioning" "curated" {
  bucket = aws_s3_bucket.curated.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "curated" {
  bucket = aws_s3_bucket.curated.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_alias.lake.name
    }
  }
}

resource "aws_s3_bucket_public_access_block" "curated" {
  bucket                  = aws_s3_bucket.curated.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "curated" {
  bucket = aws_s3_bucket.curated.id
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
          "arn:aws:s3:::indutech-prod-curated-prd-4f2a",
          "arn:aws:s3:::indutech-prod-curated-prd-4f2a/*",
        ]
        Sid = "DenyInsecureTransport"
      },
    ]
    Version = "2012-10-17"
  })

  depends_on = [aws_s3_bucket_public_access_block.curated]
}

resource "aws_s3_bucket_lifecycle_configuration" "curated" {
  bucket = aws_s3_bucket.curated.id

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

  rule {
    id     = "indutech-protocol-versions"
    status = "Enabled"

    filter {
      prefix = "_indutech/"
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 3
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
}

# The rejected zone.

resource "aws_s3_bucket" "rejected" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events: the worker publishes through its own commit records
  #checkov:skip=CKV_AWS_144:one-region platform: versioning and the guarded key protect the data; cross-region replication is a disaster-recovery choice that doubles storage, left to the operator
  bucket = "indutech-prod-rejected-prd-4f2a"
  tags = {
    "indutech:component" = "lake"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [aws_kms_key.lake]
}

resource "aws_s3_bucket_versioning" "rejected" {
  bucket = aws_s3_bucket.rejected.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "rejected" {
  bucket = aws_s3_bucket.rejected.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_alias.lake.name
    }
  }
}

resource "aws_s3_bucket_public_access_block" "rejected" {
  bucket                  = aws_s3_bucket.rejected.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "rejected" {
  bucket = aws_s3_bucket.rejected.id
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
          "arn:aws:s3:::indutech-prod-rejected-prd-4f2a",
          "arn:aws:s3:::indutech-prod-rejected-prd-4f2a/*",
        ]
        Sid = "DenyInsecureTransport"
      },
    ]
    Version = "2012-10-17"
  })

  depends_on = [aws_s3_bucket_public_access_block.rejected]
}

resource "aws_s3_bucket_lifecycle_configuration" "rejected" {
  bucket = aws_s3_bucket.rejected.id

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

  rule {
    id     = "indutech-protocol-versions"
    status = "Enabled"

    filter {
      prefix = "_indutech/"
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 3
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
}

# The artifacts zone.

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events: the worker publishes through its own commit records
  #checkov:skip=CKV_AWS_144:one-region platform: versioning and the guarded key protect the data; cross-region replication is a disaster-recovery choice that doubles storage, left to the operator
  bucket = "indutech-prod-artifacts-prd-4f2a"
  tags = {
    "indutech:component" = "lake"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }

  depends_on = [aws_kms_key.lake]
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_alias.lake.name
    }
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
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
          "arn:aws:s3:::indutech-prod-artifacts-prd-4f2a",
          "arn:aws:s3:::indutech-prod-artifacts-prd-4f2a/*",
        ]
        Sid = "DenyInsecureTransport"
      },
    ]
    Version = "2012-10-17"
  })

  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    id     = "indutech-lifecycle"
    status = "Enabled"

    filter {
      prefix = ""
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 3
    }
  }
}
