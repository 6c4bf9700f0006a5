# Site-to-site VPN to the factory: customer gateway, virtual private gateway attached to the VPC,
# the connection with both tunnels' options explicit (AWS's pre-shared keys: Terraform keeps them
# in its state, marked sensitive), and the routes to the on-premises networks.

resource "aws_customer_gateway" "factory" {
  bgp_asn    = 65010
  ip_address = "198.51.100.10"
  type       = "ipsec.1"
  tags = {
    Name                 = "indutech-prod-factory-cgw"
    "indutech:component" = "vpn"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_vpn_gateway" "main" {
  amazon_side_asn = 64512
  tags = {
    Name                 = "indutech-prod-vgw"
    "indutech:component" = "vpn"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_vpn_gateway_attachment" "main" {
  vpc_id         = aws_vpc.main.id
  vpn_gateway_id = aws_vpn_gateway.main.id
}

# The tunnels' IKE and state logs (VPN tunnel logging delivers only to CloudWatch Logs).
resource "aws_cloudwatch_log_group" "vpn" {
  #checkov:skip=CKV_AWS_158:IKE and tunnel state messages, no data: CloudWatch Logs' own encryption at rest (a KMS key would need the logs service in its policy)
  name              = "/indutech/prod/vpn-tunnels"
  retention_in_days = 365
  tags = {
    "indutech:component" = "vpn"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_vpn_connection" "factory" {
  customer_gateway_id = aws_customer_gateway.factory.id
  vpn_gateway_id      = aws_vpn_gateway.main.id
  type                = "ipsec.1"
  static_routes_only  = false

  tunnel1_ike_versions                 = ["ikev2"]
  tunnel1_phase1_encryption_algorithms = ["AES256"]
  tunnel1_phase1_integrity_algorithms  = ["SHA2-256"]
  tunnel1_phase1_dh_group_numbers      = [14, 20]
  tunnel1_phase2_encryption_algorithms = ["AES256"]
  tunnel1_phase2_integrity_algorithms  = ["SHA2-256"]
  tunnel1_phase2_dh_group_numbers      = [14, 20]

  tunnel1_log_options {
    cloudwatch_log_options {
      log_enabled       = true
      log_group_arn     = aws_cloudwatch_log_group.vpn.arn
      log_output_format = "json"
    }
  }

  tunnel2_ike_versions                 = ["ikev2"]
  tunnel2_phase1_encryption_algorithms = ["AES256"]
  tunnel2_phase1_integrity_algorithms  = ["SHA2-256"]
  tunnel2_phase1_dh_group_numbers      = [14, 20]
  tunnel2_phase2_encryption_algorithms = ["AES256"]
  tunnel2_phase2_integrity_algorithms  = ["SHA2-256"]
  tunnel2_phase2_dh_group_numbers      = [14, 20]

  tunnel2_log_options {
    cloudwatch_log_options {
      log_enabled       = true
      log_group_arn     = aws_cloudwatch_log_group.vpn.arn
      log_output_format = "json"
    }
  }

  tags = {
    Name                 = "indutech-prod-factory-vpn"
    "indutech:component" = "vpn"
    "indutech:env"       = "prod"
    managed-by           = "indutech"
  }
}

resource "aws_vpn_gateway_route_propagation" "private" {
  vpn_gateway_id = aws_vpn_gateway.main.id
  route_table_id = aws_route_table.private.id

  depends_on = [aws_vpn_gateway_attachment.main]
}
