# Flows that only need balances and key descriptions (fingerprint, version, permissions, dates):
# the metadata of each account path, never a secret.
path "{mount}/metadata/{path}" {
  capabilities = ["read"]
}
