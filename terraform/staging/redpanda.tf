# Redpanda: the broker instances at fixed private addresses spread over the zones (cloud-init in
# cloud-init/broker-N.yaml: redpanda.yaml with the same seed servers, rack = zone, production
# mode, tuning), and one topic per stream.

# SASL/SCRAM over TLS (redpanda.security = "sasl_ssl"), as indutech's apply makes it: a CA, the
# brokers' key and certificate signed by it for their addresses, the admin and worker
# principals' passwords; each secret holds JSON as indutech writes it. The private keys and
# passwords are in Terraform's state: keep the state encrypted and access to it restricted.

resource "tls_private_key" "kafka_ca" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "kafka_ca" {
  private_key_pem       = tls_private_key.kafka_ca.private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 87600
  allowed_uses          = ["cert_signing", "crl_signing"]

  subject {
    common_name = "indutech staging Kafka CA"
  }
}

resource "tls_private_key" "kafka_brokers" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "kafka_brokers" {
  private_key_pem = tls_private_key.kafka_brokers.private_key_pem
  ip_addresses    = ["10.30.0.10", "10.30.16.10", "10.30.32.10"]

  subject {
    common_name = "10.30.0.10"
  }
}

resource "tls_locally_signed_cert" "kafka_brokers" {
  cert_request_pem      = tls_cert_request.kafka_brokers.cert_request_pem
  ca_private_key_pem    = tls_private_key.kafka_ca.private_key_pem
  ca_cert_pem           = tls_self_signed_cert.kafka_ca.cert_pem
  validity_period_hours = 17520
  allowed_uses          = ["digital_signature", "key_encipherment", "server_auth"]
}

resource "random_password" "kafka_admin" {
  length  = 40
  special = false
}

resource "random_password" "kafka_worker" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "kafka_ca" {
  #checkov:skip=CKV2_AWS_57:no automatic rotation: a new Kafka password or certificate must reach the brokers (read at boot) and every client at once; rotate by replacing the secret's value and the brokers one at a time (README)
  #checkov:skip=CKV_AWS_149:Secrets Manager's AWS-managed key: only this account's principals allowed secretsmanager:GetSecretValue (the brokers' and workers' roles, each for its own) read them; a customer key would add a second gate and one more key to keep for the recovery window
  name                    = "indutech/staging/kafka-ca"
  description             = "indutech staging: the Kafka CA's certificate and key (only indutech reads it, to sign the brokers' certificate)"
  recovery_window_in_days = 30 # as indutech's destroy: recoverable for 30 days, AWS's maximum
  tags = {
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_secretsmanager_secret_version" "kafka_ca" {
  secret_id = aws_secretsmanager_secret.kafka_ca.id
  secret_string = jsonencode({
    certificate = tls_self_signed_cert.kafka_ca.cert_pem
    private_key = tls_private_key.kafka_ca.private_key_pem
  })
}

resource "aws_secretsmanager_secret" "kafka_brokers_tls" {
  #checkov:skip=CKV2_AWS_57:no automatic rotation: a new Kafka password or certificate must reach the brokers (read at boot) and every client at once; rotate by replacing the secret's value and the brokers one at a time (README)
  #checkov:skip=CKV_AWS_149:Secrets Manager's AWS-managed key: only this account's principals allowed secretsmanager:GetSecretValue (the brokers' and workers' roles, each for its own) read them; a customer key would add a second gate and one more key to keep for the recovery window
  name                    = "indutech/staging/kafka-brokers-tls"
  description             = "indutech staging: the Redpanda brokers' TLS key and certificate"
  recovery_window_in_days = 30 # as indutech's destroy: recoverable for 30 days, AWS's maximum
  tags = {
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }

  depends_on = [aws_secretsmanager_secret_version.kafka_ca]
}

resource "aws_secretsmanager_secret_version" "kafka_brokers_tls" {
  secret_id = aws_secretsmanager_secret.kafka_brokers_tls.id
  secret_string = jsonencode({
    certificate    = tls_locally_signed_cert.kafka_brokers.cert_pem
    private_key    = tls_private_key.kafka_brokers.private_key_pem
    ca_certificate = tls_self_signed_cert.kafka_ca.cert_pem
    ip_addresses   = tls_cert_request.kafka_brokers.ip_addresses
  })
}

resource "aws_secretsmanager_secret" "kafka_admin" {
  #checkov:skip=CKV2_AWS_57:no automatic rotation: a new Kafka password or certificate must reach the brokers (read at boot) and every client at once; rotate by replacing the secret's value and the brokers one at a time (README)
  #checkov:skip=CKV_AWS_149:Secrets Manager's AWS-managed key: only this account's principals allowed secretsmanager:GetSecretValue (the brokers' and workers' roles, each for its own) read them; a customer key would add a second gate and one more key to keep for the recovery window
  name                    = "indutech/staging/kafka-admin"
  description             = "indutech staging: SCRAM credentials of Kafka principal indutech-admin (superuser: topics, status)"
  recovery_window_in_days = 30 # as indutech's destroy: recoverable for 30 days, AWS's maximum
  tags = {
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }

  depends_on = [aws_secretsmanager_secret_version.kafka_ca]
}

resource "aws_secretsmanager_secret_version" "kafka_admin" {
  secret_id = aws_secretsmanager_secret.kafka_admin.id
  secret_string = jsonencode({
    username       = "indutech-admin"
    password       = random_password.kafka_admin.result
    ca_certificate = tls_self_signed_cert.kafka_ca.cert_pem
  })
}

resource "aws_secretsmanager_secret" "kafka_worker" {
  #checkov:skip=CKV2_AWS_57:no automatic rotation: a new Kafka password or certificate must reach the brokers (read at boot) and every client at once; rotate by replacing the secret's value and the brokers one at a time (README)
  #checkov:skip=CKV_AWS_149:Secrets Manager's AWS-managed key: only this account's principals allowed secretsmanager:GetSecretValue (the brokers' and workers' roles, each for its own) read them; a customer key would add a second gate and one more key to keep for the recovery window
  name                    = "indutech/staging/kafka-worker"
  description             = "indutech staging: SCRAM credentials of Kafka principal indutech-worker (the worker)"
  recovery_window_in_days = 30 # as indutech's destroy: recoverable for 30 days, AWS's maximum
  tags = {
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }

  depends_on = [aws_secretsmanager_secret_version.kafka_ca]
}

resource "aws_secretsmanager_secret_version" "kafka_worker" {
  secret_id = aws_secretsmanager_secret.kafka_worker.id
  secret_string = jsonencode({
    username       = "indutech-worker"
    password       = random_password.kafka_worker.result
    ca_certificate = tls_self_signed_cert.kafka_ca.cert_pem
  })
}

resource "aws_iam_role" "brokers" {
  name        = "indutech-staging-brokers"
  description = "indutech staging: the Redpanda brokers' instances"
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
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_iam_role_policy" "brokers" {
  name = "brokers"
  role = aws_iam_role.brokers.id
  policy = jsonencode({
    Statement = [
      {
        Action = ["secretsmanager:GetSecretValue"]
        Effect = "Allow"
        Resource = [
          "arn:aws:secretsmanager:eu-west-3:$${aws:PrincipalAccount}:secret:indutech/staging/kafka-brokers-tls-??????",
          "arn:aws:secretsmanager:eu-west-3:$${aws:PrincipalAccount}:secret:indutech/staging/kafka-admin-??????",
          "arn:aws:secretsmanager:eu-west-3:$${aws:PrincipalAccount}:secret:indutech/staging/kafka-worker-??????",
        ]
        Sid = "ReadKafkaSecrets"
      },
    ]
    Version = "2012-10-17"
  })
}

resource "aws_iam_instance_profile" "brokers" {
  name = "indutech-staging-brokers"
  role = aws_iam_role.brokers.name
  tags = {
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_instance" "broker_0" {
  #checkov:skip=CKV_AWS_126:monitoring is Redpanda's own metrics (admin port, operations CIDRs); 1-minute EC2 metrics have no consumer and cost per instance
  #checkov:skip=CKV_AWS_135:Nitro instance types (i4i, i3en, im4gn, is4gen) are EBS-optimized by default; the argument changes nothing
  ami                         = "ami-0f1b9c4e2d7a53c11"
  instance_type               = "i4i.xlarge"
  availability_zone           = "eu-west-3a"
  subnet_id                   = aws_subnet.eu_west_3a.id
  private_ip                  = "10.30.0.10"
  vpc_security_group_ids      = [aws_security_group.brokers.id]
  iam_instance_profile        = aws_iam_instance_profile.brokers.name
  user_data_base64            = base64gzip(file("${path.module}/cloud-init/broker-0.yaml"))
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted = true
  }

  tags = {
    Name                 = "indutech-staging-broker-0"
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    "indutech:rack"      = "eu-west-3a"
    managed-by           = "indutech"
  }
  volume_tags = {
    Name                 = "indutech-staging-broker-0"
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    "indutech:rack"      = "eu-west-3a"
    managed-by           = "indutech"
  }

  depends_on = [
    aws_secretsmanager_secret_version.kafka_brokers_tls,
    aws_secretsmanager_secret_version.kafka_admin,
    aws_secretsmanager_secret_version.kafka_worker,
    aws_vpc_endpoint.secretsmanager,
    aws_iam_role_policy.brokers,
    aws_iam_instance_profile.brokers,
  ]
}

resource "aws_instance" "broker_1" {
  #checkov:skip=CKV_AWS_126:monitoring is Redpanda's own metrics (admin port, operations CIDRs); 1-minute EC2 metrics have no consumer and cost per instance
  #checkov:skip=CKV_AWS_135:Nitro instance types (i4i, i3en, im4gn, is4gen) are EBS-optimized by default; the argument changes nothing
  ami                         = "ami-0f1b9c4e2d7a53c11"
  instance_type               = "i4i.xlarge"
  availability_zone           = "eu-west-3b"
  subnet_id                   = aws_subnet.eu_west_3b.id
  private_ip                  = "10.30.16.10"
  vpc_security_group_ids      = [aws_security_group.brokers.id]
  iam_instance_profile        = aws_iam_instance_profile.brokers.name
  user_data_base64            = base64gzip(file("${path.module}/cloud-init/broker-1.yaml"))
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted = true
  }

  tags = {
    Name                 = "indutech-staging-broker-1"
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    "indutech:rack"      = "eu-west-3b"
    managed-by           = "indutech"
  }
  volume_tags = {
    Name                 = "indutech-staging-broker-1"
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    "indutech:rack"      = "eu-west-3b"
    managed-by           = "indutech"
  }

  depends_on = [
    aws_secretsmanager_secret_version.kafka_brokers_tls,
    aws_secretsmanager_secret_version.kafka_admin,
    aws_secretsmanager_secret_version.kafka_worker,
    aws_vpc_endpoint.secretsmanager,
    aws_iam_role_policy.brokers,
    aws_iam_instance_profile.brokers,
  ]
}

resource "aws_instance" "broker_2" {
  #checkov:skip=CKV_AWS_126:monitoring is Redpanda's own metrics (admin port, operations CIDRs); 1-minute EC2 metrics have no consumer and cost per instance
  #checkov:skip=CKV_AWS_135:Nitro instance types (i4i, i3en, im4gn, is4gen) are EBS-optimized by default; the argument changes nothing
  ami                         = "ami-0f1b9c4e2d7a53c11"
  instance_type               = "i4i.xlarge"
  availability_zone           = "eu-west-3c"
  subnet_id                   = aws_subnet.eu_west_3c.id
  private_ip                  = "10.30.32.10"
  vpc_security_group_ids      = [aws_security_group.brokers.id]
  iam_instance_profile        = aws_iam_instance_profile.brokers.name
  user_data_base64            = base64gzip(file("${path.module}/cloud-init/broker-2.yaml"))
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted = true
  }

  tags = {
    Name                 = "indutech-staging-broker-2"
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    "indutech:rack"      = "eu-west-3c"
    managed-by           = "indutech"
  }
  volume_tags = {
    Name                 = "indutech-staging-broker-2"
    "indutech:component" = "redpanda"
    "indutech:env"       = "staging"
    "indutech:rack"      = "eu-west-3c"
    managed-by           = "indutech"
  }

  depends_on = [
    aws_secretsmanager_secret_version.kafka_brokers_tls,
    aws_secretsmanager_secret_version.kafka_admin,
    aws_secretsmanager_secret_version.kafka_worker,
    aws_vpc_endpoint.secretsmanager,
    aws_iam_role_policy.brokers,
    aws_iam_instance_profile.brokers,
  ]
}

# Topics are created through the brokers' Kafka API: the provider "kafka" must reach them
# (from inside the VPC or through the VPN), so apply the instances first when starting empty:
# terraform apply -target=aws_instance.broker_0 -target=aws_instance.broker_1 -target=aws_instance.broker_2

resource "kafka_topic" "client_tickets" {
  name               = "client_tickets"
  partitions         = 6
  replication_factor = 3

  depends_on = [
    aws_instance.broker_0,
    aws_instance.broker_1,
    aws_instance.broker_2,
    aws_secretsmanager_secret_version.kafka_admin,
  ]
}

resource "kafka_topic" "incident_events" {
  name               = "incident_events"
  partitions         = 6
  replication_factor = 3

  depends_on = [
    aws_instance.broker_0,
    aws_instance.broker_1,
    aws_instance.broker_2,
    aws_secretsmanager_secret_version.kafka_admin,
  ]
}

resource "kafka_topic" "sensor_readings" {
  name               = "sensor_readings"
  partitions         = 6
  replication_factor = 3

  depends_on = [
    aws_instance.broker_0,
    aws_instance.broker_1,
    aws_instance.broker_2,
    aws_secretsmanager_secret_version.kafka_admin,
  ]
}
