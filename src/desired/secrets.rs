//! What a Secrets Manager secret's value is: a recipe indutech follows once, at create
//! (`provider/secrets.rs`), carried in the secret resource's content. The recipe holds no secret.

use anyhow::Context as _;

use crate::plan::Resource;

/// What a secret's value is, as `desired` writes it in [`Resource::content`] (JSON, tagged by
/// `generate`); a secret without content holds a password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "generate", rename_all = "snake_case")]
pub enum Recipe {
    /// 32 characters by `GetRandomPassword`, with Active Directory's complexity rules.
    Password,
    /// A self-signed CA (ECDSA P-256, 10 years): JSON `{"certificate", "private_key"}` (PEM).
    /// Only indutech (apply) reads it, to issue the brokers' certificate.
    KafkaCa {
        /// The CA's common name.
        common_name: String,
    },
    /// The brokers' key and certificate for `ip_addresses` (ECDSA P-256, server
    /// authentication, 2 years), signed by the CA in secret `ca_secret`: JSON `{"certificate",
    /// "private_key", "ca_certificate", "ip_addresses"}`.
    KafkaBrokersTls {
        /// The CA's secret.
        ca_secret: String,
        /// The brokers' private IPs, the certificate's subject alternative names.
        ip_addresses: Vec<String>,
    },
    /// SCRAM credentials: JSON `{"username", "password", "ca_certificate"}` ([`crate::kafka`]),
    /// the password 40 letters and digits, the CA certificate from secret `ca_secret`.
    KafkaScram {
        /// The principal's user name.
        username: String,
        /// The CA's secret.
        ca_secret: String,
    },
}

impl Recipe {
    /// The recipe of `resource` (a password when it has no content).
    ///
    /// Errors: content that is not a recipe (a bug in desired state).
    pub fn of(resource: &Resource) -> anyhow::Result<Recipe> {
        match &resource.content {
            None => Ok(Recipe::Password),
            Some(text) => serde_json::from_str(text)
                .with_context(|| format!("{}: its content is not a secret recipe (a bug)", resource.address)),
        }
    }
}
