//! The one place AWS SDK clients are configured.
//!
//! Every client indutech uses is built here from the environment: its region, its endpoint
//! overrides (LocalStack and the moto sidecar in `dev`), the standard credential chain (or the
//! emulators' dummy credentials when the environment asks), standard retries with backoff for
//! throttling and 5xx answers, and S3 path-style addressing whenever an endpoint is overridden.
//! Every call is timed ([`CallTime`]): logged at debug level (`-v`), and kept for `bench` while
//! [`record_call_times`] is on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::environment::{Endpoints, Environment};

/// A client of SDK crate `$krate` with the endpoint override of `$service`, if any.
macro_rules! client {
    ($aws:expr, $krate:ident, $service:literal) => {{
        let mut builder = $krate::config::Builder::from(&$aws.config).interceptor(CallTimer);
        if let Some(url) = $aws.endpoint($service) {
            builder = builder.endpoint_url(url);
        }
        $krate::Client::from_conf(builder.build())
    }};
}

/// Shared AWS configuration of one environment; cheap to clone.
#[derive(Clone, Debug)]
pub struct Aws {
    config: SdkConfig,
    endpoints: Endpoints,
}

impl Aws {
    /// Resolves the SDK configuration for `environment` (credentials are resolved lazily, on
    /// the first call, so building this makes no network call).
    pub async fn new(environment: &Environment) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(environment.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if environment.endpoints.test_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                "test",
                "test",
                None,
                None,
                "indutech-test-credentials",
            ));
        }
        Self { config: loader.load().await, endpoints: environment.endpoints.clone() }
    }

    /// The endpoint override for a service of [`crate::config::environment::SERVICES`].
    pub fn endpoint(&self, service: &str) -> Option<&str> {
        self.endpoints.for_service(service)
    }

    /// S3 client (path-style addressing when the endpoint is overridden).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::from(&self.config).interceptor(CallTimer);
        if let Some(url) = self.endpoint("s3") {
            builder = builder.endpoint_url(url).force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    /// Glue client.
    pub fn glue(&self) -> aws_sdk_glue::Client {
        client!(self, aws_sdk_glue, "glue")
    }

    /// EC2 client (VPC, subnets, security groups, VPN, instances).
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        client!(self, aws_sdk_ec2, "ec2")
    }

    /// KMS client.
    pub fn kms(&self) -> aws_sdk_kms::Client {
        client!(self, aws_sdk_kms, "kms")
    }

    /// IAM client.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        client!(self, aws_sdk_iam, "iam")
    }

    /// CloudWatch Logs client.
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        client!(self, aws_sdk_cloudwatchlogs, "logs")
    }

    /// Secrets Manager client.
    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        client!(self, aws_sdk_secretsmanager, "secrets_manager")
    }

    /// Redshift (control plane) client.
    pub fn redshift(&self) -> aws_sdk_redshift::Client {
        client!(self, aws_sdk_redshift, "redshift")
    }

    /// Redshift Data API client. Against an emulator it does not retry: the moto sidecar
    /// answers the operations it lacks (`ListSchemas`) with a bare HTTP 500, which retrying only
    /// makes slower.
    pub fn redshift_data(&self) -> aws_sdk_redshiftdata::Client {
        let mut builder = aws_sdk_redshiftdata::config::Builder::from(&self.config).interceptor(CallTimer);
        if let Some(url) = self.endpoint("redshift_data") {
            builder = builder.endpoint_url(url).retry_config(RetryConfig::disabled());
        }
        aws_sdk_redshiftdata::Client::from_conf(builder.build())
    }

    /// Directory Service client.
    pub fn directory(&self) -> aws_sdk_directory::Client {
        client!(self, aws_sdk_directory, "directory_service")
    }

    /// AWS DMS client.
    pub fn dms(&self) -> aws_sdk_databasemigration::Client {
        client!(self, aws_sdk_databasemigration, "dms")
    }

    /// STS client.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        client!(self, aws_sdk_sts, "sts")
    }
}

/// One attempt of an AWS call: from the request leaving to the response's headers arriving,
/// i.e. the target's own time plus the network (loopback for the test bed). Retries are attempts
/// of their own; an attempt that got no response (connection refused, timeout) is not recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTime {
    /// SDK service name (`EC2`, `S3`, `Glue`...).
    pub service: String,
    /// Operation (`DescribeVpcs`).
    pub operation: String,
    /// Time on the wire and in the target.
    pub elapsed: Duration,
}

static RECORDING: AtomicBool = AtomicBool::new(false);
static CALLS: Mutex<Vec<CallTime>> = Mutex::new(Vec::new());

/// Starts (or stops) keeping every call's [`CallTime`] for [`take_call_times`]. Off by default:
/// a long-running worker would otherwise keep them all.
pub fn record_call_times(on: bool) {
    RECORDING.store(on, Ordering::SeqCst);
}

/// The calls recorded since the previous take, in completion order.
pub fn take_call_times() -> Vec<CallTime> {
    std::mem::take(&mut *CALLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// When the current attempt's request left.
#[derive(Debug, Clone, Copy)]
struct Sent(Instant);

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// Times each attempt between transmit and response (see [`CallTime`]).
#[derive(Debug)]
struct CallTimer;

impl Intercept for CallTimer {
    fn name(&self) -> &'static str {
        "indutech::aws::CallTimer"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Sent(Instant::now()));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Sent(sent)) = cfg.load::<Sent>().copied() else { return Ok(()) };
        let elapsed = sent.elapsed();
        let (service, operation) = cfg.load::<Metadata>().map_or(("?", "?"), |m| (m.service(), m.name()));
        tracing::debug!(service, operation, ms = elapsed.as_secs_f64() * 1e3, "aws call");
        if RECORDING.load(Ordering::Relaxed) {
            let call = CallTime { service: service.to_owned(), operation: operation.to_owned(), elapsed };
            CALLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(call);
        }
        Ok(())
    }
}
