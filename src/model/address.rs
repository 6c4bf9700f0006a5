//! Resource addresses (`<terraform type>.<key>`, as in plans and the Terraform export) that
//! more than one module writes: desired state declares the resource and its dependents, a
//! provider lists what the environment no longer wants under the same address, so both take it
//! from here. Pure; imports nothing of the crate but [`super::zone_key`].

/// The VPC.
pub const VPC: &str = "aws_vpc.main";
/// The private subnets' route table.
pub const ROUTE_TABLE: &str = "aws_route_table.private";
/// The VPC's default security group (kept without rules).
pub const DEFAULT_SECURITY_GROUP: &str = "aws_default_security_group.main";
/// The S3 gateway endpoint.
pub const S3_ENDPOINT: &str = "aws_vpc_endpoint.s3";

/// The VPC's flow logs (the audit component).
pub const FLOW_LOG: &str = "aws_flow_log.vpc";
/// The Glue interface endpoint (the ec2 workers register partitions without internet access).
pub const GLUE_ENDPOINT: &str = "aws_vpc_endpoint.glue";
/// The Secrets Manager interface endpoint (`sasl_ssl`: brokers and ec2 workers read their
/// Kafka secrets).
pub const SECRETS_ENDPOINT: &str = "aws_vpc_endpoint.secretsmanager";
/// The brokers' IAM role's inline policy and instance profile (`sasl_ssl`).
pub const BROKER_ROLE_POLICY: &str = "aws_iam_role_policy.brokers";
/// See [`BROKER_ROLE_POLICY`].
pub const BROKER_INSTANCE_PROFILE: &str = "aws_iam_instance_profile.brokers";
/// The VPN tunnels' log group.
pub const VPN_LOG_GROUP: &str = "aws_cloudwatch_log_group.vpn";
/// The factory's customer gateway.
pub const CUSTOMER_GATEWAY: &str = "aws_customer_gateway.factory";
/// The virtual private gateway (`vpn.attachment = "vpn-gateway"`).
pub const VPN_GATEWAY: &str = "aws_vpn_gateway.main";
/// The virtual private gateway's attachment to the VPC.
pub const VPN_GATEWAY_ATTACHMENT: &str = "aws_vpn_gateway_attachment.main";
/// The virtual private gateway's route propagation into the private route table (BGP).
pub const VPN_GATEWAY_ROUTE_PROPAGATION: &str = "aws_vpn_gateway_route_propagation.private";
/// The transit gateway (`vpn.attachment = "transit-gateway"`).
pub const TRANSIT_GATEWAY: &str = "aws_ec2_transit_gateway.main";
/// The transit gateway's attachment to the VPC.
pub const TRANSIT_GATEWAY_ATTACHMENT: &str = "aws_ec2_transit_gateway_vpc_attachment.main";
/// The site-to-site VPN connection to the factory.
pub const VPN_CONNECTION: &str = "aws_vpn_connection.factory";
/// The lake's KMS key.
pub const LAKE_KEY: &str = "aws_kms_key.lake";
/// The Glue database of the curated zone.
pub const GLUE_DATABASE: &str = "aws_glue_catalog_database.main";
/// The Redshift cluster.
pub const REDSHIFT_CLUSTER: &str = "aws_redshift_cluster.main";
/// The warehouse's parameter group (TLS required, user activity logged).
pub const REDSHIFT_PARAMETER_GROUP: &str = "aws_redshift_parameter_group.main";
/// The role Redshift Spectrum assumes to read the lake.
pub const SPECTRUM_ROLE: &str = "aws_iam_role.spectrum";
/// The worker binary in the artifacts bucket.
pub const WORKER_BINARY: &str = "aws_s3_object.worker_binary";
/// The ec2 worker role's inline policy.
pub const WORKER_ROLE_POLICY: &str = "aws_iam_role_policy.worker";
/// The ec2 worker instances' instance profile.
pub const WORKER_INSTANCE_PROFILE: &str = "aws_iam_instance_profile.worker";
/// The Managed AD directory.
pub const DIRECTORY: &str = "aws_directory_service_directory.main";

/// The private subnet of availability zone `zone` (`aws_subnet.us_east_1a`).
pub fn subnet(zone: &str) -> String {
    format!("aws_subnet.{}", super::zone_key(zone))
}

/// The security group of `role` (`brokers`, `worker`, `warehouse`).
pub fn security_group(role: &str) -> String {
    format!("aws_security_group.{role}")
}

/// The instance `index` of `role` (`broker`, `worker`): `aws_instance.broker_0`.
pub fn instance(role: &str, index: u32) -> String {
    format!("aws_instance.{role}_{index}")
}

/// The Glue table of stream `stream`.
pub fn glue_table(stream: &str) -> String {
    format!("aws_glue_catalog_table.{stream}")
}

/// The topic of stream `stream`.
pub fn topic(stream: &str) -> String {
    format!("kafka_topic.{stream}")
}

/// A route of type `kind` (`aws_route`, `aws_ec2_transit_gateway_route`,
/// `aws_vpn_connection_route`) to an on-premises network the environment lists at position
/// `index`: `aws_route.onprem_0`.
pub fn onprem_route(kind: &str, index: usize) -> String {
    format!("{kind}.onprem_{index}")
}

/// A route of type `kind` to an on-premises network the environment no longer lists: its
/// position is gone, so it is addressed by its CIDR (`aws_route.onprem_172_21_0_0_16`).
pub fn orphan_onprem_route(kind: &str, cidr: &str) -> String {
    format!("{kind}.onprem_{}", cidr.replace(['.', '/'], "_"))
}

/// DMS's IAM role (S3 target, the source's secret).
pub const DMS_ROLE: &str = "aws_iam_role.dms";
/// Its inline policy.
pub const DMS_ROLE_POLICY: &str = "aws_iam_role_policy.dms";
/// The replication subnet group.
pub const DMS_SUBNET_GROUP: &str = "aws_dms_replication_subnet_group.erp";
/// The replication instance.
pub const DMS_INSTANCE: &str = "aws_dms_replication_instance.erp";
/// The SQL Server source endpoint.
pub const DMS_SOURCE_ENDPOINT: &str = "aws_dms_endpoint.erp_source";
/// The S3 target endpoint.
pub const DMS_TARGET_ENDPOINT: &str = "aws_dms_s3_endpoint.erp_target";
/// The replication task.
pub const DMS_TASK: &str = "aws_dms_replication_task.erp";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_addresses() {
        assert_eq!(subnet("us-east-1a"), "aws_subnet.us_east_1a");
        assert_eq!(instance("worker", 1), "aws_instance.worker_1");
        assert_eq!(onprem_route("aws_route", 0), "aws_route.onprem_0");
        assert_eq!(orphan_onprem_route("aws_route", "172.21.0.0/16"), "aws_route.onprem_172_21_0_0_16");
    }
}
