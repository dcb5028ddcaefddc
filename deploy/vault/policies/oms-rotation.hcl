# The rotate-keys flow: reads the current key, writes a new version (check-and-set), updates the
# metadata that describes it, and reads/clears the operator's staged key for venues without a key API.
path "{mount}/data/{path}" {
  capabilities = ["create", "update", "read"]
}
path "{mount}/metadata/{path}" {
  capabilities = ["create", "update", "read"]
}
path "{mount}/data/staging/{path}" {
  capabilities = ["read"]
}
path "{mount}/metadata/staging/{path}" {
  capabilities = ["delete"]
}
