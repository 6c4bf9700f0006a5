# Secrets are variables, never values: give them with TF_VAR_<name> or a *.tfvars file kept out
# of version control. Terraform keeps them in its state: protect the state like the secrets.

variable "directory_admin_password" {
  description = "Password of the Managed AD `Admin` user (indutech keeps its own in the secret indutech/staging/directory-admin)."
  type        = string
  sensitive   = true
  nullable    = false
}

variable "ad_trust_password" {
  description = "Password of the trust with the factory forest, the same as on the factory's side (indutech keeps its own in the secret indutech/staging/ad-trust)."
  type        = string
  sensitive   = true
  nullable    = false
}

variable "worker_binary" {
  description = "Path of the indutech binary the workers run (Linux, the instances' architecture); its SHA-256 names the artifact object."
  type        = string
  nullable    = false
}
