# Directory: AWS Managed Microsoft AD in two private subnets and the forest trust to the
# factory's domain. indutech generates both passwords into the Secrets Manager secrets below;
# here they are the sensitive variables directory_admin_password and ad_trust_password (put the
# same values into the secrets to keep them where indutech and the factory's admins look).

resource "aws_secretsmanager_secret" "directory_admin" {
  #checkov:skip=CKV2_AWS_57:no automatic rotation: the trust password must change in both forests at once, the Admin password through ds:ResetUserPassword; rotate both by hand (README)
  #checkov:skip=CKV_AWS_149:Secrets Manager's AWS-managed key: only this account's principals allowed secretsmanager:GetSecretValue read them; a customer key would add a second gate and one more key to keep for the recovery window
  name                    = "indutech/staging/directory-admin"
  description             = "indutech staging: password of the Managed AD `Admin` user"
  recovery_window_in_days = 30 # as indutech's destroy: recoverable for 30 days, AWS's maximum
  tags = {
    "indutech:component" = "directory"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_secretsmanager_secret" "ad_trust" {
  #checkov:skip=CKV2_AWS_57:no automatic rotation: the trust password must change in both forests at once, the Admin password through ds:ResetUserPassword; rotate both by hand (README)
  #checkov:skip=CKV_AWS_149:Secrets Manager's AWS-managed key: only this account's principals allowed secretsmanager:GetSecretValue read them; a customer key would add a second gate and one more key to keep for the recovery window
  name                    = "indutech/staging/ad-trust"
  description             = "indutech staging: password of the trust with the factory forest (give it to the factory's AD admins)"
  recovery_window_in_days = 30 # as indutech's destroy: recoverable for 30 days, AWS's maximum
  tags = {
    "indutech:component" = "directory"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }
}

resource "aws_directory_service_directory" "main" {
  name     = "aws.indutech.example"
  type     = "MicrosoftAD"
  edition  = "Standard"
  password = var.directory_admin_password

  vpc_settings {
    vpc_id = aws_vpc.main.id
    subnet_ids = [
      aws_subnet.eu_west_3a.id,
      aws_subnet.eu_west_3b.id,
    ]
  }

  tags = {
    "indutech:component" = "directory"
    "indutech:env"       = "staging"
    managed-by           = "indutech"
  }

  depends_on = [aws_secretsmanager_secret.directory_admin]
}

resource "aws_directory_service_trust" "factory" {
  directory_id                   = aws_directory_service_directory.main.id
  remote_domain_name             = "factory.indutech.local"
  trust_direction                = "Two-Way"
  trust_type                     = "Forest"
  trust_password                 = var.ad_trust_password
  conditional_forwarder_ip_addrs = ["172.16.10.10", "172.16.10.11"]

  depends_on = [aws_secretsmanager_secret.ad_trust]
}
