# The stream daemon: reads the current key of each account it trades, and nothing else.
# `oms keys init` repeats every block that names {path} once per account path of the daemon
# (secret/exchanges/{exchange}_{market}_{account}); {mount} is the KV v2 mount.
path "{mount}/data/{path}" {
  capabilities = ["read"]
}
# The webhook's shared secret (stream/webhook.py): one fixed path, read only.
path "{mount}/data/webhooks/tradingview" {
  capabilities = ["read"]
}
