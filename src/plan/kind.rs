//! The resource types indutech manages, as enums: [`Kind`] (the Terraform type, the part of an
//! address before the dot) and the [`Service`] whose provider module handles it, carrying the
//! type as that module's own enum ([`S3Kind`], [`VpnKind`]...). The one table below is the only
//! place a type's text and service are written; dispatches on [`Service`] and each module's
//! matches on its enum are exhaustive, so a new type or service does not compile until every
//! provider handles it.

use std::fmt;

macro_rules! kinds {
    ($(
        $(#[doc = $service_doc:literal])*
        $service:ident($service_kind:ident) {
            $($variant:ident / $local:ident = $text:literal,)*
        }
    )*) => {
        /// A resource type: the Terraform type of its address.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )*)*
        }

        /// The provider module a resource type belongs to (`src/provider/<service>.rs`), with
        /// the type as that module's own enum: a module's `match` on it is exhaustive, so a
        /// type added to the table does not compile until its provider handles it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Service {
            $(
                $(#[doc = $service_doc])*
                $service($service_kind),
            )*
        }

        $(
            #[doc = concat!("The resource types of [`Service::", stringify!($service), "`].")]
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum $service_kind {
                $(
                    #[doc = concat!("`", $text, "`")]
                    $local,
                )*
            }

            impl $service_kind {
                /// The same type as a [`Kind`].
                pub fn kind(self) -> Kind {
                    match self {
                        $($service_kind::$local => Kind::$variant,)*
                    }
                }
            }

            impl fmt::Display for $service_kind {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(self.kind().as_str())
                }
            }
        )*

        impl Kind {
            /// Every resource type.
            pub const ALL: &[Kind] = &[$($(Kind::$variant,)*)*];

            /// The type as in addresses and Terraform (`aws_s3_bucket`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($(Kind::$variant => $text,)*)*
                }
            }

            /// The provider module that handles it, with the type as that module's enum.
            pub fn service(self) -> Service {
                match self {
                    $($(Kind::$variant => Service::$service($service_kind::$local),)*)*
                }
            }

            /// The type named `text`; None for a type indutech does not manage.
            pub fn parse(text: &str) -> Option<Kind> {
                match text {
                    $($($text => Some(Kind::$variant),)*)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// S3 buckets, their settings and objects.
    S3(S3Kind) {
        S3Bucket / Bucket = "aws_s3_bucket",
        S3BucketLifecycle / Lifecycle = "aws_s3_bucket_lifecycle_configuration",
        S3BucketPolicy / Policy = "aws_s3_bucket_policy",
        S3BucketPublicAccessBlock / PublicAccessBlock = "aws_s3_bucket_public_access_block",
        S3BucketEncryption / Encryption = "aws_s3_bucket_server_side_encryption_configuration",
        S3BucketVersioning / Versioning = "aws_s3_bucket_versioning",
        S3BucketLogging / Logging = "aws_s3_bucket_logging",
        S3Object / Object = "aws_s3_object",
    }
    /// CloudWatch Logs groups (the VPN tunnels' logs).
    Logs(LogsKind) {
        LogGroup / LogGroup = "aws_cloudwatch_log_group",
    }
    /// The lake key and its alias.
    Kms(KmsKind) {
        KmsKey / Key = "aws_kms_key",
        KmsAlias / Alias = "aws_kms_alias",
    }
    /// The Glue database and tables.
    Glue(GlueKind) {
        GlueDatabase / Database = "aws_glue_catalog_database",
        GlueTable / Table = "aws_glue_catalog_table",
    }
    /// VPC, subnets, route tables, security groups, endpoints.
    Ec2(Ec2Kind) {
        Vpc / Vpc = "aws_vpc",
        Subnet / Subnet = "aws_subnet",
        RouteTable / RouteTable = "aws_route_table",
        RouteTableAssociation / RouteTableAssociation = "aws_route_table_association",
        SecurityGroup / SecurityGroup = "aws_security_group",
        DefaultSecurityGroup / DefaultSecurityGroup = "aws_default_security_group",
        VpcEndpoint / VpcEndpoint = "aws_vpc_endpoint",
        FlowLog / FlowLog = "aws_flow_log",
    }
    /// Customer gateway, VPN or transit gateway, the connection and its routes.
    Vpn(VpnKind) {
        CustomerGateway / CustomerGateway = "aws_customer_gateway",
        VpnGateway / VpnGateway = "aws_vpn_gateway",
        TransitGateway / TransitGateway = "aws_ec2_transit_gateway",
        TransitGatewayVpcAttachment / TransitGatewayVpcAttachment = "aws_ec2_transit_gateway_vpc_attachment",
        TransitGatewayRoute / TransitGatewayRoute = "aws_ec2_transit_gateway_route",
        VpnGatewayAttachment / VpnGatewayAttachment = "aws_vpn_gateway_attachment",
        VpnConnection / VpnConnection = "aws_vpn_connection",
        VpnConnectionRoute / VpnConnectionRoute = "aws_vpn_connection_route",
        Route / Route = "aws_route",
        VpnGatewayRoutePropagation / VpnGatewayRoutePropagation = "aws_vpn_gateway_route_propagation",
    }
    /// Roles, role policies, instance profiles.
    Iam(IamKind) {
        IamRole / Role = "aws_iam_role",
        IamRolePolicy / RolePolicy = "aws_iam_role_policy",
        IamInstanceProfile / InstanceProfile = "aws_iam_instance_profile",
    }
    /// The cluster, its subnet group and the external schema (Data API).
    Redshift(RedshiftKind) {
        RedshiftSubnetGroup / SubnetGroup = "aws_redshift_subnet_group",
        RedshiftCluster / Cluster = "aws_redshift_cluster",
        RedshiftDataStatement / DataStatement = "aws_redshiftdata_statement",
        RedshiftLogging / Logging = "aws_redshift_logging",
        RedshiftParameterGroup / ParameterGroup = "aws_redshift_parameter_group",
    }
    /// EC2 instances (brokers, ec2 workers).
    Instances(InstanceKind) {
        Instance / Instance = "aws_instance",
    }
    /// Topics, through the Kafka admin API.
    Kafka(KafkaKind) {
        KafkaTopic / Topic = "kafka_topic",
    }
    /// The local worker process (`dev`).
    LocalWorker(LocalWorkerKind) {
        LocalWorker / Worker = "indutech_local_worker",
    }
    /// AWS DMS: the replication subnet group, instance, endpoints and task (the ERP's cold path).
    Dms(DmsKind) {
        DmsSubnetGroup / SubnetGroup = "aws_dms_replication_subnet_group",
        DmsInstance / Instance = "aws_dms_replication_instance",
        DmsEndpoint / Endpoint = "aws_dms_endpoint",
        DmsS3Endpoint / S3Endpoint = "aws_dms_s3_endpoint",
        DmsTask / Task = "aws_dms_replication_task",
    }
    /// Managed AD, its trust and their secrets.
    Directory(DirectoryKind) {
        Secret / Secret = "aws_secretsmanager_secret",
        Directory / Directory = "aws_directory_service_directory",
        DirectoryTrust / Trust = "aws_directory_service_trust",
    }
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
