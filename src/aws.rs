//! The one place AWS SDK clients are configured.
//!
//! Every client indutech uses is built here from the environment: its region, its endpoint
//! overrides (LocalStack and the moto sidecar in `dev`), the standard credential chain (or the
//! emulators' dummy credentials when the environment asks), standard retries with backoff for
//! throttling and 5xx answers, and S3 path-style addressing whenever an endpoint is overridden.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::environment::{Endpoints, Environment};

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
        let mut builder = aws_sdk_s3::config::Builder::from(&self.config);
        if let Some(url) = self.endpoint("s3") {
            builder = builder.endpoint_url(url).force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    /// Glue client.
    pub fn glue(&self) -> aws_sdk_glue::Client {
        let mut builder = aws_sdk_glue::config::Builder::from(&self.config);
        if let Some(url) = self.endpoint("glue") {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_glue::Client::from_conf(builder.build())
    }
}
