//! How indutech's Kafka clients (the worker, `produce`, `status`, the topic provider and
//! smoke-test) reach the environment's brokers: the bootstrap servers and, with
//! `redpanda.security = "sasl_ssl"`, SASL/SCRAM-SHA-512 over TLS with a principal's credentials
//! read from Secrets Manager.
//!
//! A principal's secret holds JSON `{"username": ..., "password": ..., "ca_certificate": PEM}`.
//! For brokers named in `redpanda.bootstrap_servers` the environment names it in
//! `[redpanda.credentials]`, and `ca_certificate` may be left out (the system's trust store then
//! verifies the brokers). For the brokers indutech runs, apply generates it
//! ([`crate::model::kafka_secret_name`], `provider/secrets.rs`) with the CA that signed the
//! brokers' certificate.
//! The password is never logged or printed: [`Connection`]'s `Debug`
//! leaves it out, and errors name the secret and the field, never a value.

use std::sync::Mutex;

use anyhow::{Context as _, bail};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

use crate::aws::Aws;
use crate::config::environment::{Environment, KafkaSecurity};

/// The SCRAM user of [`Principal::Admin`] on indutech's brokers.
pub const KAFKA_ADMIN_USER: &str = "indutech-admin";
/// The SCRAM user of [`Principal::Worker`] on indutech's brokers.
pub const KAFKA_WORKER_USER: &str = "indutech-worker";

/// The principals indutech's clients connect as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// Creates topics, reads offsets and metadata, produces test data (apply, `status`,
    /// `produce`, smoke-test). A superuser on indutech's brokers.
    Admin,
    /// Consumes the streams' topics in the worker's consumer group and commits its offsets.
    Worker,
}

impl Principal {
    /// `admin` or `worker`: the key in `[redpanda.credentials]` and the end of the generated
    /// secret's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Principal::Admin => "admin",
            Principal::Worker => "worker",
        }
    }
}

/// Where and how a client connects; cheap to clone. Built by [`connection`] (or [`plaintext`]).
#[derive(Clone)]
pub struct Connection {
    /// `host:port,...`
    pub bootstrap: String,
    sasl: Option<Sasl>,
}

#[derive(Clone)]
struct Sasl {
    username: String,
    password: String,
    /// PEM; None: the system's trust store.
    ca_certificate: Option<String>,
    /// Where the credentials came from (a secret's name), for error messages.
    source: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Connection");
        d.field("bootstrap", &self.bootstrap);
        if let Some(sasl) = &self.sasl {
            d.field("username", &sasl.username).field("credentials", &sasl.source);
        }
        d.finish_non_exhaustive()
    }
}

/// A connection without authentication or TLS to `bootstrap` (`host:port,...`).
pub fn plaintext(bootstrap: impl Into<String>) -> Connection {
    Connection { bootstrap: bootstrap.into(), sasl: None }
}

/// The connection of `principal` to `environment`'s brokers: plaintext when the environment
/// declares `redpanda.security = "plaintext"`, else SASL_SSL with the principal's secret
/// (`[redpanda.credentials]` or the generated `indutech/<env>/kafka-<principal>`).
///
/// Errors: the secret cannot be read (missing, no access: the message names it and says what
/// indutech expected), is not JSON, or lacks `username` or `password`.
pub async fn connection(environment: &Environment, aws: &Aws, principal: Principal) -> anyhow::Result<Connection> {
    let bootstrap = crate::model::bootstrap_servers(environment);
    if environment.redpanda.security == KafkaSecurity::Plaintext {
        return Ok(plaintext(bootstrap));
    }
    let name = secret_of(environment, principal);
    let text = aws
        .secrets_manager()
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .map_err(aws_sdk_secretsmanager::Error::from)
        .with_context(|| {
            format!(
                "reading the Kafka credentials of principal `{}` from Secrets Manager secret {name} \
                 (redpanda.security = \"sasl_ssl\")",
                principal.as_str()
            )
        })?
        .secret_string
        .with_context(|| format!("Secrets Manager secret {name} holds no string"))?;
    let sasl = parse_secret(&name, &text)?;
    Ok(Connection { bootstrap, sasl: Some(sasl) })
}

/// The Secrets Manager secret holding `principal`'s credentials for `environment`.
pub fn secret_of(environment: &Environment, principal: Principal) -> String {
    match (&environment.redpanda.credentials, principal) {
        (Some(c), Principal::Admin) => c.admin.clone(),
        (Some(c), Principal::Worker) => c.worker.clone(),
        (None, p) => crate::model::kafka_secret_name(environment, p.as_str()),
    }
}

/// Reads a credentials secret's JSON; errors name the secret and the field, never a value.
fn parse_secret(name: &str, text: &str) -> anyhow::Result<Sasl> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(text) else {
        bail!(
            "Secrets Manager secret {name} is not a JSON object; expected {{\"username\": ..., \"password\": ..., \
             \"ca_certificate\": PEM (optional)}}"
        );
    };
    let field = |key: &str, required: bool| -> anyhow::Result<Option<String>> {
        match fields.get(key) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            None | Some(serde_json::Value::Null) if !required => Ok(None),
            Some(_) => bail!("Secrets Manager secret {name}: `{key}` is not a non-empty string"),
            None => bail!("Secrets Manager secret {name} has no `{key}`"),
        }
    };
    let username = field("username", true)?.unwrap_or_default();
    let password = field("password", true)?.unwrap_or_default();
    let ca_certificate = field("ca_certificate", false)?;
    if let Some(pem) = &ca_certificate
        && !pem.contains("-----BEGIN CERTIFICATE-----")
    {
        bail!("Secrets Manager secret {name}: `ca_certificate` is not a PEM certificate");
    }
    Ok(Sasl { username, password, ca_certificate, source: name.to_owned() })
}

/// A client context that keeps the last error librdkafka reported for the client (a refused
/// SASL authentication, a certificate that does not verify), which a request's own error
/// ("broker transport failure", "timed out") does not say.
#[derive(Debug, Default)]
pub struct ErrorsSeen {
    last: Mutex<Option<String>>,
}

impl ErrorsSeen {
    /// `; the client reported: REASON` when it reported an error, else empty: for the end of a
    /// request's error message.
    pub fn explain(&self) -> String {
        match self.last.lock().ok().and_then(|l| l.clone()) {
            Some(reason) => format!("; the client reported: {reason}"),
            None => String::new(),
        }
    }
}

impl ClientContext for ErrorsSeen {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "Kafka client error");
        if let Ok(mut last) = self.last.lock() {
            *last = Some(reason.to_owned());
        }
    }
}

impl ConsumerContext for ErrorsSeen {}

impl Connection {
    /// A librdkafka configuration with `bootstrap.servers` and, for SASL_SSL,
    /// `security.protocol`, `sasl.mechanisms` (SCRAM-SHA-512), the credentials and the CA
    /// (`ssl.ca.pem`); the broker's certificate is verified, host name included
    /// (`ssl.endpoint.identification.algorithm = https`). Callers add their own settings.
    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        if let Some(sasl) = &self.sasl {
            config
                .set("security.protocol", "SASL_SSL")
                .set("sasl.mechanisms", "SCRAM-SHA-512")
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password)
                .set("enable.ssl.certificate.verification", "true")
                .set("ssl.endpoint.identification.algorithm", "https");
            if let Some(pem) = &sasl.ca_certificate {
                config.set("ssl.ca.pem", pem);
            }
            // librdkafka logs its configuration only at debug level, and then with
            // `sasl.password` and `ssl.*` values redacted ("[redacted]").
        }
        config
    }

    /// A client that reads metadata, watermarks and (with `group`) a consumer group's committed
    /// offsets, and keeps the errors the client reports ([`ErrorsSeen`]).
    ///
    /// Errors: librdkafka refused the configuration.
    pub fn reader(&self, group: Option<&str>) -> anyhow::Result<BaseConsumer<ErrorsSeen>> {
        let mut config = self.config();
        if let Some(group) = group {
            config.set("group.id", group).set("enable.auto.commit", "false");
        }
        config.create_with_context(ErrorsSeen::default()).context("creating the Kafka client")
    }

    /// The cluster's metadata of `topic` (None: every topic) through `reader` (made by
    /// [`Connection::reader`]), waiting at most `timeout`.
    ///
    /// Errors: no broker answered; the message names the servers, how the client connects and
    /// what the client reported (a refused authentication, a certificate that does not verify).
    pub fn metadata(
        &self,
        reader: &BaseConsumer<ErrorsSeen>,
        topic: Option<&str>,
        timeout: std::time::Duration,
    ) -> anyhow::Result<Metadata> {
        reader.fetch_metadata(topic, timeout).map_err(|e| {
            // The client's error events arrive through its queue, served by a poll.
            let _ = reader.poll(std::time::Duration::from_millis(100));
            let what = topic.map_or_else(|| "the topics".to_owned(), |t| format!("the metadata of topic {t}"));
            anyhow::Error::new(e).context(format!(
                "reading {what} from {} ({}){}",
                self.bootstrap,
                self.describe(),
                reader.context().explain()
            ))
        })
    }

    /// `username (credentials from secret NAME)` or `plaintext`: what to say in an error.
    pub fn describe(&self) -> String {
        match &self.sasl {
            Some(s) => format!("SASL_SSL as {} (credentials from Secrets Manager secret {})", s.username, s.source),
            None => "plaintext".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_read_with_or_without_a_ca_and_errors_never_show_a_value() {
        let s = parse_secret("n", r#"{"username":"u","password":"p4ss-w0rd"}"#).unwrap();
        assert_eq!((s.username.as_str(), s.password.as_str(), s.ca_certificate), ("u", "p4ss-w0rd", None));
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let text = serde_json::json!({"username": "u", "password": "p", "ca_certificate": pem}).to_string();
        assert_eq!(parse_secret("n", &text).unwrap().ca_certificate.as_deref(), Some(pem));

        for (text, says) in [
            ("p4ss-w0rd", "is not a JSON object"),
            (r#"{"username":"u"}"#, "has no `password`"),
            (r#"{"password":"p4ss-w0rd"}"#, "has no `username`"),
            (r#"{"username":"u","password":7}"#, "`password` is not a non-empty string"),
            (r#"{"username":"u","password":"p4ss-w0rd","ca_certificate":"p4ss-w0rd"}"#, "not a PEM certificate"),
        ] {
            let message = format!("{:#}", parse_secret("indutech/x/kafka-admin", text).err().unwrap());
            assert!(message.contains("indutech/x/kafka-admin") && message.contains(says), "{message}");
            assert!(!message.contains("p4ss-w0rd"), "{message}");
        }
    }

    #[test]
    fn sasl_ssl_configures_scram_and_verification_and_debug_hides_the_password() {
        let connection = Connection {
            bootstrap: "b:9092".into(),
            sasl: Some(Sasl {
                username: "indutech-worker".into(),
                password: "p4ss-w0rd".into(),
                ca_certificate: Some("-----BEGIN CERTIFICATE-----".into()),
                source: "indutech/x/kafka-worker".into(),
            }),
        };
        let config = connection.config();
        for (key, value) in [
            ("bootstrap.servers", "b:9092"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "indutech-worker"),
            ("ssl.endpoint.identification.algorithm", "https"),
            ("ssl.ca.pem", "-----BEGIN CERTIFICATE-----"),
        ] {
            assert_eq!(config.get(key), Some(value), "{key}");
        }
        let shown = format!("{connection:?} {}", connection.describe());
        assert!(shown.contains("indutech/x/kafka-worker") && !shown.contains("p4ss-w0rd"), "{shown}");
        assert_eq!(plaintext("b:9092").config().get("security.protocol"), None);
    }
}
