//! The resource types indutech manages, as enums: [`Kind`] (the Terraform type, the part of an
//! address before the dot) and the [`Service`] whose provider module handles it. The one table
//! below is the only place a type's text and service are written; a dispatch on [`Service`] is
//! exhaustive, so a new service does not compile until every dispatch handles it.

use std::fmt;

/// The provider module a resource type belongs to (`src/provider/<service>.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// S3 buckets, their settings and objects.
    S3,
    /// The lake key and its alias.
    Kms,
    /// The Glue database and tables.
    Glue,
    /// VPC, subnets, route tables, security groups, endpoints.
    Ec2,
    /// Customer gateway, VPN or transit gateway, the connection and its routes.
    Vpn,
    /// Roles, role policies, instance profiles.
    Iam,
    /// The cluster, its subnet group and the external schema (Data API).
    Redshift,
    /// EC2 instances (brokers, ec2 workers).
    Instances,
    /// Topics, through the Kafka admin API.
    Kafka,
    /// The local worker process (`dev`).
    LocalWorker,
    /// Managed AD, its trust and their secrets.
    Directory,
}

macro_rules! kinds {
    ($($variant:ident = $text:literal => $service:ident,)*) => {
        /// A resource type: the Terraform type of its address.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )*
        }

        impl Kind {
            /// Every resource type.
            pub const ALL: &[Kind] = &[$(Kind::$variant,)*];

            /// The type as in addresses and Terraform (`aws_s3_bucket`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => $text,)*
                }
            }

            /// The provider module that handles it.
            pub fn service(self) -> Service {
                match self {
                    $(Kind::$variant => Service::$service,)*
                }
            }

            /// The type named `text`; None for a type indutech does not manage.
            pub fn parse(text: &str) -> Option<Kind> {
                match text {
                    $($text => Some(Kind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    S3Bucket = "aws_s3_bucket" => S3,
    S3BucketLifecycle = "aws_s3_bucket_lifecycle_configuration" => S3,
    S3BucketPolicy = "aws_s3_bucket_policy" => S3,
    S3BucketPublicAccessBlock = "aws_s3_bucket_public_access_block" => S3,
    S3BucketEncryption = "aws_s3_bucket_server_side_encryption_configuration" => S3,
    S3BucketVersioning = "aws_s3_bucket_versioning" => S3,
    S3Object = "aws_s3_object" => S3,
    KmsKey = "aws_kms_key" => Kms,
    KmsAlias = "aws_kms_alias" => Kms,
    GlueDatabase = "aws_glue_catalog_database" => Glue,
    GlueTable = "aws_glue_catalog_table" => Glue,
    Vpc = "aws_vpc" => Ec2,
    Subnet = "aws_subnet" => Ec2,
    RouteTable = "aws_route_table" => Ec2,
    RouteTableAssociation = "aws_route_table_association" => Ec2,
    SecurityGroup = "aws_security_group" => Ec2,
    VpcEndpoint = "aws_vpc_endpoint" => Ec2,
    CustomerGateway = "aws_customer_gateway" => Vpn,
    VpnGateway = "aws_vpn_gateway" => Vpn,
    TransitGateway = "aws_ec2_transit_gateway" => Vpn,
    TransitGatewayVpcAttachment = "aws_ec2_transit_gateway_vpc_attachment" => Vpn,
    TransitGatewayRoute = "aws_ec2_transit_gateway_route" => Vpn,
    VpnGatewayAttachment = "aws_vpn_gateway_attachment" => Vpn,
    VpnConnection = "aws_vpn_connection" => Vpn,
    VpnConnectionRoute = "aws_vpn_connection_route" => Vpn,
    Route = "aws_route" => Vpn,
    VpnGatewayRoutePropagation = "aws_vpn_gateway_route_propagation" => Vpn,
    IamRole = "aws_iam_role" => Iam,
    IamRolePolicy = "aws_iam_role_policy" => Iam,
    IamInstanceProfile = "aws_iam_instance_profile" => Iam,
    RedshiftSubnetGroup = "aws_redshift_subnet_group" => Redshift,
    RedshiftCluster = "aws_redshift_cluster" => Redshift,
    RedshiftDataStatement = "aws_redshiftdata_statement" => Redshift,
    Instance = "aws_instance" => Instances,
    Secret = "aws_secretsmanager_secret" => Directory,
    Directory = "aws_directory_service_directory" => Directory,
    DirectoryTrust = "aws_directory_service_trust" => Directory,
    KafkaTopic = "kafka_topic" => Kafka,
    LocalWorker = "indutech_local_worker" => LocalWorker,
}

impl Kind {
    /// The type of `address` (`aws_s3_bucket.raw` -> [`Kind::S3Bucket`]).
    ///
    /// Errors: a type indutech does not manage (a bug where the address comes from the model).
    pub fn of(address: &str) -> anyhow::Result<Kind> {
        let text = super::kind_of(address);
        Kind::parse(text)
            .ok_or_else(|| anyhow::anyhow!("indutech has no provider for resource type {text} ({address})"))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_text() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(*kind));
        }
        let unique: std::collections::BTreeSet<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(unique.len(), Kind::ALL.len());
        assert!(Kind::of("aws_lambda_function.x").is_err());
    }

    #[test]
    fn every_resource_the_model_makes_has_a_kind() {
        for name in ["dev", "staging", "prod"] {
            let environment = crate::config::shipped(name);
            for resource in crate::desired::resources(&environment, &"0".repeat(64), &[]) {
                assert!(Kind::of(&resource.address).is_ok(), "{name}: {}", resource.address);
            }
        }
    }
}
