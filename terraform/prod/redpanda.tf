# Redpanda: the broker instances at fixed private addresses spread over the zones (cloud-init in
# cloud-init/broker-N.yaml: redpanda.yaml with the same seed servers, rack = zone, production
# mode, tuning), and one topic per stream.

resource "aws_instance" "broker_0" {
  #checkov:skip=CKV2_AWS_41:the brokers call no AWS API (no tiered storage), so they get no role at all
  #checkov:skip=CKV_AWS_126:monitoring is Redpanda's own metrics (admin port, operations CIDRs); 1-minute EC2 metrics have no consumer and cost per instance
  #checkov:skip=CKV_AWS_135:Nitro instance types (i4i, i3en, im4gn, is4gen) are EBS-optimized by default; the argument changes nothing
  ami                         = "ami-0f1b9c4e2d7a53c11"
  instance_type               = "i4i.2xlarge"
  availability_zone           = "eu-west-3a"
  subnet_id                   = aws_subnet.eu_west_3a.id
  private_ip                  = "10.20.0.10"
  vpc_security_group_ids      = [aws_security_group.brokers.id]
  user_data_base64            = base64gzip(file("${path.module}/cloud-init/broker-0.yaml"))
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted = true
  }

  tags = {
    Name                 = "indutech-prod-broker-0"
    "indutech:component" = "redpanda"
    "indutech:env"       = "prod"
    "indutech:rack"      = "eu-west-3a"
    managed-by           = "indutech"
  }
  volume_tags = {
    Name                 = "indutech-prod-broker-0"
    "indutech:component" = "redpanda"
    "indutech:env"       = "prod"
    "indutech:rack"      = "eu-west-3a"
    managed-by           = "indutech"
  }
}

resource "aws_instance" "broker_1" {
  #checkov:skip=CKV2_AWS_41:the brokers call no AWS API (no tiered storage), so they get no role at all
  #checkov:skip=CKV_AWS_126:monitoring is Redpanda's own metrics (admin port, operations CIDRs); 1-minute EC2 metrics have no consumer and cost per instance
  #checkov:skip=CKV_AWS_135:Nitro instance types (i4i, i3en, im4gn, is4gen) are EBS-optimized by default; the argument changes nothing
  ami                         = "ami-0f1b9c4e2d7a53c11"
  instance_type               = "i4i.2xlarge"
  availability_zone           = "eu-west-3b"
  subnet_id                   = aws_subnet.eu_west_3b.id
  private_ip                  = "10.20.16.10"
  vpc_security_group_ids      = [aws_security_group.brokers.id]
  user_data_base64            = base64gzip(file("${path.module}/cloud-init/broker-1.yaml"))
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted = true
  }

  tags = {
    Name                 = "indutech-prod-broker-1"
    "indutech:component" = "redpanda"
    "indutech:env"       = "prod"
    "indutech:rack"      = "eu-west-3b"
    managed-by           = "indutech"
  }
  volume_tags = {
    Name                 = "indutech-prod-broker-1"
    "indutech:component" = "redpanda"
    "indutech:env"       = "prod"
    "indutech:rack"      = "eu-west-3b"
    managed-by           = "indutech"
  }
}

resource "aws_instance" "broker_2" {
  #checkov:skip=CKV2_AWS_41:the brokers call no AWS API (no tiered storage), so they get no role at all
  #checkov:skip=CKV_AWS_126:monitoring is Redpanda's own metrics (admin port, operations CIDRs); 1-minute EC2 metrics have no consumer and cost per instance
  #checkov:skip=CKV_AWS_135:Nitro instance types (i4i, i3en, im4gn, is4gen) are EBS-optimized by default; the argument changes nothing
  ami                         = "ami-0f1b9c4e2d7a53c11"
  instance_type               = "i4i.2xlarge"
  availability_zone           = "eu-west-3c"
  subnet_id                   = aws_subnet.eu_west_3c.id
  private_ip                  = "10.20.32.10"
  vpc_security_group_ids      = [aws_security_group.brokers.id]
  user_data_base64            = base64gzip(file("${path.module}/cloud-init/broker-2.yaml"))
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    encrypted = true
  }

  tags = {
    Name                 = "indutech-prod-broker-2"
    "indutech:component" = "redpanda"
    "indutech:env"       = "prod"
    "indutech:rack"      = "eu-west-3c"
    managed-by           = "indutech"
  }
  volume_tags = {
    Name                 = "indutech-prod-broker-2"
    "indutech:component" = "redpanda"
    "indutech:env"       = "prod"
    "indutech:rack"      = "eu-west-3c"
    managed-by           = "indutech"
  }
}

# Topics are created through the brokers' Kafka API: the provider "kafka" must reach them
# (from inside the VPC or through the VPN), so apply the instances first when starting empty:
# terraform apply -target=aws_instance.broker_0 -target=aws_instance.broker_1 -target=aws_instance.broker_2

resource "kafka_topic" "client_tickets" {
  name               = "client_tickets"
  partitions         = 12
  replication_factor = 3

  depends_on = [
    aws_instance.broker_0,
    aws_instance.broker_1,
    aws_instance.broker_2,
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
  ]
}

resource "kafka_topic" "sensor_readings" {
  name               = "sensor_readings"
  partitions         = 12
  replication_factor = 3

  depends_on = [
    aws_instance.broker_0,
    aws_instance.broker_1,
    aws_instance.broker_2,
  ]
}
