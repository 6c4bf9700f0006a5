# Endpoints and names other tools need; no secret values (the warehouse's master password stays
# in the secret Redshift manages: see warehouse_master_password_secret).

output "vpc_id" {
  value = aws_vpc.main.id
}

output "private_subnet_ids" {
  value = [aws_subnet.eu_west_3a.id, aws_subnet.eu_west_3b.id, aws_subnet.eu_west_3c.id]
}

output "vpn_tunnel_addresses" {
  description = "AWS's outside addresses of the two tunnels, for the factory's VPN device."
  value       = [aws_vpn_connection.factory.tunnel1_address, aws_vpn_connection.factory.tunnel2_address]
}

output "lake_buckets" {
  value = {
    raw       = aws_s3_bucket.raw.id
    curated   = aws_s3_bucket.curated.id
    rejected  = aws_s3_bucket.rejected.id
    artifacts = aws_s3_bucket.artifacts.id
  }
}

output "glue_database" {
  value = aws_glue_catalog_database.main.name
}

output "warehouse_endpoint" {
  description = "host:port of the Redshift cluster (private)."
  value       = aws_redshift_cluster.main.endpoint
}

output "warehouse_master_password_secret" {
  description = "ARN of the Secrets Manager secret Redshift keeps the master password in."
  value       = aws_redshift_cluster.main.master_password_secret_arn
}

output "kafka_bootstrap_servers" {
  value = ["10.30.0.10:9092", "10.30.16.10:9092", "10.30.32.10:9092"]
}

output "directory_dns_ip_addresses" {
  value = aws_directory_service_directory.main.dns_ip_addresses
}

output "worker_metrics_endpoints" {
  description = "host:port of each worker's Prometheus metrics."
  value       = ["10.30.0.11:9464", "10.30.16.11:9464"]
}
