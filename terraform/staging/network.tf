# Network: the VPC, one private subnet per availability zone, their route table, the security
# groups of the brokers, the warehouse and the workers, and the S3 gateway endpoint.

resource "aws_vpc" "main" {
  cidr_block           = "10.30.0.0/16"
  enable_dns_hostnames = true
  enable_dns_support   = true
  tags = {
    Name                 = "indutech-staging-vpc"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  tags = {
    Name                 = "indutech-staging-private-rt"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_subnet" "eu_west_3a" {
  vpc_id                  = aws_vpc.main.id
  availability_zone       = "eu-west-3a"
  cidr_block              = "10.30.0.0/20"
  map_public_ip_on_launch = false
  tags = {
    Name                 = "indutech-staging-private-eu-west-3a"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_subnet" "eu_west_3b" {
  vpc_id                  = aws_vpc.main.id
  availability_zone       = "eu-west-3b"
  cidr_block              = "10.30.16.0/20"
  map_public_ip_on_launch = false
  tags = {
    Name                 = "indutech-staging-private-eu-west-3b"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_subnet" "eu_west_3c" {
  vpc_id                  = aws_vpc.main.id
  availability_zone       = "eu-west-3c"
  cidr_block              = "10.30.32.0/20"
  map_public_ip_on_launch = false
  tags = {
    Name                 = "indutech-staging-private-eu-west-3c"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_route_table_association" "eu_west_3a" {
  subnet_id      = aws_subnet.eu_west_3a.id
  route_table_id = aws_route_table.private.id
}

resource "aws_route_table_association" "eu_west_3b" {
  subnet_id      = aws_subnet.eu_west_3b.id
  route_table_id = aws_route_table.private.id
}

resource "aws_route_table_association" "eu_west_3c" {
  subnet_id      = aws_subnet.eu_west_3c.id
  route_table_id = aws_route_table.private.id
}

resource "aws_security_group" "brokers" {
  name        = "indutech-staging-brokers-sg"
  description = "Redpanda brokers: Kafka, RPC, admin, schema registry, HTTP proxy"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "HTTP proxy from the VPC"
    protocol    = "tcp"
    from_port   = 8082
    to_port     = 8082
    cidr_blocks = ["10.30.0.0/16"]
  }

  ingress {
    description = "Kafka API from the VPC"
    protocol    = "tcp"
    from_port   = 9092
    to_port     = 9092
    cidr_blocks = ["10.30.0.0/16"]
  }

  ingress {
    description = "schema registry from the VPC"
    protocol    = "tcp"
    from_port   = 8081
    to_port     = 8081
    cidr_blocks = ["10.30.0.0/16"]
  }

  ingress {
    description = "admin API from broker 0"
    protocol    = "tcp"
    from_port   = 9644
    to_port     = 9644
    cidr_blocks = ["10.30.0.10/32"]
  }

  ingress {
    description = "internal RPC from broker 0"
    protocol    = "tcp"
    from_port   = 33145
    to_port     = 33145
    cidr_blocks = ["10.30.0.10/32"]
  }

  ingress {
    description = "admin API from broker 1"
    protocol    = "tcp"
    from_port   = 9644
    to_port     = 9644
    cidr_blocks = ["10.30.16.10/32"]
  }

  ingress {
    description = "internal RPC from broker 1"
    protocol    = "tcp"
    from_port   = 33145
    to_port     = 33145
    cidr_blocks = ["10.30.16.10/32"]
  }

  ingress {
    description = "admin API from broker 2"
    protocol    = "tcp"
    from_port   = 9644
    to_port     = 9644
    cidr_blocks = ["10.30.32.10/32"]
  }

  ingress {
    description = "internal RPC from broker 2"
    protocol    = "tcp"
    from_port   = 33145
    to_port     = 33145
    cidr_blocks = ["10.30.32.10/32"]
  }

  ingress {
    description = "HTTP proxy from the factory"
    protocol    = "tcp"
    from_port   = 8082
    to_port     = 8082
    cidr_blocks = ["172.16.0.0/16"]
  }

  ingress {
    description = "Kafka API from the factory"
    protocol    = "tcp"
    from_port   = 9092
    to_port     = 9092
    cidr_blocks = ["172.16.0.0/16"]
  }

  ingress {
    description = "schema registry from the factory"
    protocol    = "tcp"
    from_port   = 8081
    to_port     = 8081
    cidr_blocks = ["172.16.0.0/16"]
  }

  ingress {
    description = "admin API and metrics from operations"
    protocol    = "tcp"
    from_port   = 9644
    to_port     = 9644
    cidr_blocks = ["172.16.50.0/24"]
  }

  egress {
    description = "HTTPS to S3 (gateway endpoint) and the interface endpoints"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "Kafka API of the other brokers"
    protocol    = "tcp"
    from_port   = 9092
    to_port     = 9092
    cidr_blocks = ["10.30.0.0/16"]
  }

  egress {
    description = "admin API of the other brokers"
    protocol    = "tcp"
    from_port   = 9644
    to_port     = 9644
    cidr_blocks = ["10.30.0.0/16"]
  }

  egress {
    description = "internal RPC of the other brokers"
    protocol    = "tcp"
    from_port   = 33145
    to_port     = 33145
    cidr_blocks = ["10.30.0.0/16"]
  }

  tags = {
    Name                 = "indutech-staging-brokers-sg"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_security_group" "warehouse" {
  name        = "indutech-staging-warehouse-sg"
  description = "Redshift warehouse"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "Redshift from the VPC"
    protocol    = "tcp"
    from_port   = 5439
    to_port     = 5439
    cidr_blocks = ["10.30.0.0/16"]
  }

  ingress {
    description = "Redshift from the factory"
    protocol    = "tcp"
    from_port   = 5439
    to_port     = 5439
    cidr_blocks = ["172.16.0.0/16"]
  }

  egress {
    description = "HTTPS to S3 (gateway endpoint) and the interface endpoints"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = {
    Name                 = "indutech-staging-warehouse-sg"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_security_group" "worker" {
  name        = "indutech-staging-worker-sg"
  description = "indutech streaming workers (metrics)"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "metrics from operations"
    protocol    = "tcp"
    from_port   = 9464
    to_port     = 9464
    cidr_blocks = ["172.16.50.0/24"]
  }

  egress {
    description = "HTTPS to S3 (gateway endpoint) and the interface endpoints"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "Kafka API of the brokers"
    protocol    = "tcp"
    from_port   = 9092
    to_port     = 9092
    cidr_blocks = ["10.30.0.0/16"]
  }

  tags = {
    Name                 = "indutech-staging-worker-sg"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_security_group" "endpoints" {
  name        = "indutech-staging-endpoints-sg"
  description = "interface endpoints of AWS APIs (HTTPS from the VPC)"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "HTTPS from the VPC"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["10.30.0.0/16"]
  }

  # No egress rule: Terraform removes AWS's default one.

  tags = {
    Name                 = "indutech-staging-endpoints-sg"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

# The VPC's default security group, emptied (no rule declared: Terraform removes AWS's).
resource "aws_default_security_group" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_vpc_endpoint" "glue" {
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.eu-west-3.glue"
  vpc_endpoint_type   = "Interface"
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
  subnet_ids = [
    aws_subnet.eu_west_3a.id,
    aws_subnet.eu_west_3b.id,
    aws_subnet.eu_west_3c.id,
  ]
  tags = {
    Name                 = "indutech-staging-glue-endpoint"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_vpc_endpoint" "secretsmanager" {
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.eu-west-3.secretsmanager"
  vpc_endpoint_type   = "Interface"
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
  subnet_ids = [
    aws_subnet.eu_west_3a.id,
    aws_subnet.eu_west_3b.id,
    aws_subnet.eu_west_3c.id,
  ]
  tags = {
    Name                 = "indutech-staging-secretsmanager-endpoint"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.eu-west-3.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]
  tags = {
    Name                 = "indutech-staging-s3-endpoint"
    "indutech:component" = "network"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}
