//! Secrets Manager secrets and the values indutech generates into them at create: passwords
//! (the directory's), the Kafka CA, the brokers' TLS key and certificate signed by it, and the
//! SCRAM credentials of the Kafka principals ([`Recipe`], carried in the resource's content by
//! `desired`). A value is generated once, never shown, and kept: a secret in its recovery
//! window is restored with its value rather than made again. Only the brokers' certificate is
//! issued again, when the brokers' addresses change (its `ip_addresses` attribute, read from the
//! secret's value).

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::{Context, attributes, code, sdk_error, str_attr, tags_attr, tags_value};
use crate::desired::secrets::Recipe;
use crate::plan::{Change, Observed, Resource};

/// Certificates: rcgen, ECDSA P-256.
pub mod tls {
    use anyhow::Context as _;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    /// `(certificate, private key)` of a new self-signed CA called `common_name`, PEM, valid
    /// from now for 10 years.
    ///
    /// Errors: key generation or signing failed.
    pub fn ca(common_name: &str) -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate().context("generating the CA key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(3650);
        let certificate = params.self_signed(&key).context("signing the CA certificate")?;
        Ok((certificate.pem(), key.serialize_pem()))
    }

    /// `(certificate, private key)` PEM of a server certificate for `ip_addresses`, signed by
    /// the CA (`ca_certificate`, `ca_private_key`: PEM), valid from now for 2 years.
    ///
    /// Errors: the CA cannot be parsed, an address is not an IP, signing failed.
    pub fn issue(
        ca_certificate: &str,
        ca_private_key: &str,
        ip_addresses: &[String],
    ) -> anyhow::Result<(String, String)> {
        let ca_key = KeyPair::from_pem(ca_private_key).context("reading the CA's private key")?;
        let issuer = Issuer::from_ca_cert_pem(ca_certificate, ca_key).context("reading the CA certificate")?;
        let mut params = CertificateParams::new(ip_addresses.to_vec()).context("the certificate's addresses")?;
        params.distinguished_name.push(DnType::CommonName, ip_addresses.first().map_or("redpanda", String::as_str));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(730);
        let key = KeyPair::generate().context("generating the brokers' key")?;
        let certificate = params.signed_by(&key, &issuer).context("signing the brokers' certificate")?;
        Ok((certificate.pem(), key.serialize_pem()))
    }
}

/// The value of the secret called `name` (passed on to an API call, never shown).
pub(super) async fn value(ctx: &Context, name: &str) -> anyhow::Result<String> {
    let out = ctx
        .aws
        .secrets_manager()
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "secrets_manager", "GetSecretValue", name, e))?;
    out.secret_string.with_context(|| format!("secret {name} holds no string"))
}

/// The JSON object in secret `name`.
async fn json_value(ctx: &Context, name: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
    let text = value(ctx, name).await?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => bail!("secret {name} does not hold a JSON object as indutech writes it"),
    }
}

fn field<'a>(map: &'a serde_json::Map<String, Value>, name: &str, key: &str) -> anyhow::Result<&'a str> {
    map.get(key).and_then(Value::as_str).with_context(|| format!("secret {name} has no `{key}`"))
}

/// A password from `GetRandomPassword` (for secret `name`, in errors): `length` characters,
/// punctuation other than `excluded` when `punctuation`, each kind of character at least once.
async fn random_password(
    ctx: &Context,
    name: &str,
    length: i64,
    punctuation: bool,
    excluded: &str,
) -> anyhow::Result<String> {
    ctx.aws
        .secrets_manager()
        .get_random_password()
        .password_length(length)
        .exclude_punctuation(!punctuation)
        .set_exclude_characters((!excluded.is_empty()).then(|| excluded.to_owned()))
        .require_each_included_type(true)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "secrets_manager", "GetRandomPassword", name, e))?
        .random_password
        .context("GetRandomPassword returned no password")
}

/// The value `recipe` makes (reading the CA's secret where it needs it).
async fn generate(ctx: &Context, name: &str, recipe: &Recipe) -> anyhow::Result<String> {
    Ok(match recipe {
        // Active Directory's complexity rules: upper, lower, digit and punctuation, with none of
        // the characters that break PowerShell or the console quoting.
        Recipe::Password => random_password(ctx, name, 32, true, "\"'`\\/@$;").await?,
        Recipe::KafkaCa { common_name } => {
            let (certificate, private_key) = tls::ca(common_name)?;
            json!({"certificate": certificate, "private_key": private_key}).to_string()
        }
        Recipe::KafkaBrokersTls { ca_secret, ip_addresses } => {
            let ca = json_value(ctx, ca_secret).await?;
            let ca_certificate = field(&ca, ca_secret, "certificate")?;
            let (certificate, private_key) =
                tls::issue(ca_certificate, field(&ca, ca_secret, "private_key")?, ip_addresses)?;
            json!({
                "certificate": certificate,
                "private_key": private_key,
                "ca_certificate": ca_certificate,
                "ip_addresses": ip_addresses,
            })
            .to_string()
        }
        Recipe::KafkaScram { username, ca_secret } => {
            let ca = json_value(ctx, ca_secret).await?;
            // Letters and digits only: the password goes through shell, YAML and rpk flags.
            let password = random_password(ctx, name, 40, false, "").await?;
            json!({"username": username, "password": password, "ca_certificate": field(&ca, ca_secret, "certificate")?})
                .to_string()
        }
    })
}

fn sm_tags(resource: &Resource) -> Vec<aws_sdk_secretsmanager::types::Tag> {
    tags_attr(resource)
        .into_iter()
        .map(|(k, v)| aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build())
        .collect()
}

pub(super) async fn observe(ctx: &Context, resource: &Resource) -> anyhow::Result<Observed> {
    let sm = ctx.aws.secrets_manager();
    let out = match sm.describe_secret().secret_id(&resource.name).send().await {
        Ok(out) if out.deleted_date().is_none() => out,
        Ok(_) => return Ok(Observed::Absent),
        Err(err) if code(&err) == Some("ResourceNotFoundException") => return Ok(Observed::Absent),
        Err(err) => return Err(sdk_error(ctx, "secrets_manager", "DescribeSecret", &resource.name, err)),
    };
    let mut observed = attributes(vec![
        ("description", json!(out.description())),
        ("name", json!(out.name())),
        ("tags", tags_value(out.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))),
    ]);
    if let Recipe::KafkaBrokersTls { .. } = Recipe::of(resource)? {
        let value = json_value(ctx, &resource.name).await?;
        observed.insert("ip_addresses".into(), value.get("ip_addresses").cloned().unwrap_or(Value::Null));
    }
    Ok(Observed::Present { id: out.arn().unwrap_or_default().to_owned(), attributes: observed })
}

pub(super) async fn create(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    let name = resource.name.as_str();
    let sm = ctx.aws.secrets_manager();
    // Destroy leaves a secret in its recovery window: restore it, with its value (the factory's
    // side of the trust, or clients trusting the Kafka CA, may still use it).
    let pending = match sm.describe_secret().secret_id(name).send().await {
        Ok(out) => out.deleted_date().is_some(),
        Err(err) if code(&err) == Some("ResourceNotFoundException") => false,
        Err(err) => return Err(sdk_error(ctx, "secrets_manager", "DescribeSecret", name, err)),
    };
    if pending {
        sm.restore_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "secrets_manager", "RestoreSecret", name, e))?;
        sm.update_secret()
            .secret_id(name)
            .description(str_attr(resource, "description")?)
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "secrets_manager", "UpdateSecret", name, e))?;
        sm.tag_resource()
            .secret_id(name)
            .set_tags(Some(sm_tags(resource)))
            .send()
            .await
            .map_err(|e| sdk_error(ctx, "secrets_manager", "TagResource", name, e))?;
        return reissue_if_moved(ctx, resource).await;
    }
    let value = generate(ctx, name, &Recipe::of(resource)?).await?;
    match sm
        .create_secret()
        .name(name)
        .description(str_attr(resource, "description")?)
        .secret_string(value)
        .set_tags(Some(sm_tags(resource)))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // A killed apply may have created it: keep its value (it may be in use).
        Err(err) if code(&err) == Some("ResourceExistsException") => Ok(()),
        Err(err) => Err(sdk_error(ctx, "secrets_manager", "CreateSecret", name, err)),
    }
}

/// A restored brokers' certificate whose addresses are not the brokers' any more is issued again.
async fn reissue_if_moved(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    let Recipe::KafkaBrokersTls { ip_addresses, .. } = Recipe::of(resource)? else { return Ok(()) };
    let value = json_value(ctx, &resource.name).await?;
    if value.get("ip_addresses") != Some(&json!(ip_addresses)) {
        put_value(ctx, resource).await?;
    }
    Ok(())
}

/// A new value for `resource`, made by its recipe.
async fn put_value(ctx: &Context, resource: &Resource) -> anyhow::Result<()> {
    let value = generate(ctx, &resource.name, &Recipe::of(resource)?).await?;
    ctx.aws
        .secrets_manager()
        .put_secret_value()
        .secret_id(&resource.name)
        .secret_string(value)
        .send()
        .await
        .map_err(|e| sdk_error(ctx, "secrets_manager", "PutSecretValue", &resource.name, e))?;
    Ok(())
}

pub(super) async fn update(ctx: &Context, resource: &Resource, change: &Change) -> anyhow::Result<()> {
    for attribute in &change.attributes {
        match attribute.name.as_str() {
            "description" => {
                ctx.aws
                    .secrets_manager()
                    .update_secret()
                    .secret_id(&resource.name)
                    .description(str_attr(resource, "description")?)
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "secrets_manager", "UpdateSecret", &resource.name, e))?;
            }
            "tags" => {
                ctx.aws
                    .secrets_manager()
                    .tag_resource()
                    .secret_id(&resource.name)
                    .set_tags(Some(sm_tags(resource)))
                    .send()
                    .await
                    .map_err(|e| sdk_error(ctx, "secrets_manager", "TagResource", &resource.name, e))?;
            }
            // The brokers' certificate, issued again for their addresses by the same CA: brokers
            // read it at boot, so those replaced get it; the others keep theirs, which names them.
            "ip_addresses" => put_value(ctx, resource).await?,
            other => bail!("{}: `{other}` cannot be updated in place (a bug in desired state)", resource.address),
        }
    }
    Ok(())
}

/// Days a deleted secret stays recoverable (`RestoreSecret`): AWS's default and maximum.
pub(super) const SECRET_RECOVERY_DAYS: i64 = 30;

pub(super) async fn delete(ctx: &Context, change: &Change) -> anyhow::Result<()> {
    let name = change.name.as_str();
    // Never forced: the secret stays recoverable for SECRET_RECOVERY_DAYS (a directory restored
    // from a snapshot, the factory's side of the trust, a client trusting the Kafka CA may still
    // need it); the next apply restores it instead of creating another.
    let result = ctx
        .aws
        .secrets_manager()
        .delete_secret()
        .secret_id(name)
        .recovery_window_in_days(SECRET_RECOVERY_DAYS)
        .send()
        .await;
    super::deleted(ctx, "secrets_manager", "DeleteSecret", name, result, |c| c == "ResourceNotFoundException")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenSSL (a verifier indutech did not write) accepts the brokers' certificate for each
    /// address, signed by the CA, and refuses it for another address.
    #[test]
    fn the_brokers_certificate_verifies_against_the_ca_for_their_addresses_only() {
        let (ca, ca_key) = tls::ca("indutech test Kafka CA").unwrap();
        let ips = vec!["10.40.0.10".to_owned(), "10.40.16.10".to_owned()];
        let (certificate, key) = tls::issue(&ca, &ca_key, &ips).unwrap();
        assert!(key.contains("PRIVATE KEY") && certificate.contains("BEGIN CERTIFICATE"));
        let dir = std::env::temp_dir().join(format!("indutech-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), &ca).unwrap();
        std::fs::write(dir.join("broker.pem"), &certificate).unwrap();
        let verify = |ip: &str| {
            let out = std::process::Command::new("openssl")
                .args(["verify", "-purpose", "sslserver", "-verify_ip", ip, "-CAfile"])
                .arg(dir.join("ca.pem"))
                .arg(dir.join("broker.pem"))
                .output()
                .expect("openssl is installed");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
            )
        };
        for ip in &ips {
            let (ok, said) = verify(ip);
            assert!(ok, "{ip}: {said}");
        }
        let (ok, said) = verify("10.40.0.99");
        assert!(!ok, "another address verified: {said}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn recipes_round_trip_through_the_content() {
        for recipe in [
            Recipe::KafkaScram { username: "indutech-worker".into(), ca_secret: "indutech/x/kafka-ca".into() },
            Recipe::KafkaBrokersTls { ca_secret: "c".into(), ip_addresses: vec!["10.0.0.10".into()] },
        ] {
            let text = serde_json::to_string(&recipe).unwrap();
            assert_eq!(serde_json::from_str::<Recipe>(&text).unwrap(), recipe, "{text}");
        }
    }
}
