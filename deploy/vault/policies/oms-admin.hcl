# The `oms keys` command (put, show, list, revoke, stage): manages the keys of every account path,
# without access to Vault's own configuration (policies, auth methods, audit devices); with the unseal key
# (and only with it) it may make a root token for `oms keys init --generate-root` (last blocks).
path "{mount}/data/exchanges/*" {
  capabilities = ["create", "update", "read"]
}
path "{mount}/metadata/exchanges/*" {
  capabilities = ["create", "update", "read", "list"]
}
path "{mount}/metadata/exchanges" {
  capabilities = ["list"]
}
path "{mount}/delete/exchanges/*" {
  capabilities = ["update"]
}
path "{mount}/undelete/exchanges/*" {
  capabilities = ["update"]
}
path "{mount}/data/staging/exchanges/*" {
  capabilities = ["create", "update", "read"]
}
path "{mount}/metadata/staging/exchanges/*" {
  capabilities = ["read", "delete"]
}
# The webhook's shared secret (`oms webhook secret`): written and read by the CLI.
path "{mount}/data/webhooks/tradingview" {
  capabilities = ["create", "update", "read"]
}
# `oms keys init --generate-root` (embedded OpenBao): a fresh root token from the unseal key, used by init and
# revoked at its end. Without the unseal key (data/openbao/init.json, 0600) this grants nothing.
path "sys/generate-root-token/attempt" {
  capabilities = ["read", "update", "delete"]
}
path "sys/generate-root-token/update" {
  capabilities = ["update"]
}
