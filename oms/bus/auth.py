"""Who may do what on the bus: the NATS identities, their subject permissions, and their NKey credentials.

The embedded nats-server admits no anonymous client. Four identities, each an NKey user:

* ``daemon``: publishes every event (``orders.>`` ... ``risk.>``, ``md.>``, ``alerts.>``), manages its
  JetStream streams and key-value buckets, subscribes to the commands (``cmd.>``) and answers them (replies
  only, through ``allow_responses``); it may not publish ``cmd.>`` itself.
* ``trader``: sends commands (``cmd.>``: order requests and the kill switch) and reads everything a
  dashboard reads; it may not publish events nor subscribe to ``cmd.>`` (so it can never pose as the
  daemon that answers them).
* ``reader``: read-only, for dashboards: subscribes to events and market data, reads streams and buckets
  through JetStream's read API (consumers, message get), and publishes nothing else.
* ``flows``: the Prefect flows: transfer events (``transfers.>``), key rotation (``keys.rotate.>``, the
  holders bucket), alerts, JetStream management; no ``cmd.>``.

Only ``trader`` publishes ``cmd.>`` and only ``daemon`` subscribes to it. Each identity has its own reply
inbox prefix (``_INBOX.{identity}.``) and may subscribe only there, so one identity cannot read the
replies meant for another.

Why NKeys rather than users and passwords: with NKeys the server keeps only public keys (its config holds
no secret), and a client proves itself by signing the server's per-connection nonce, so nothing replayable
crosses the (unencrypted, loopback) connection; a password would travel in clear in every CONNECT and sit
in the server's config. The seeds are generated on first start into ``{data_dir}/keys/nats/{identity}.nk``
(mode 0600, the folder 0700); the server's authorization block is written next to them.

Known limit: a push consumer's deliveries come from the server, not from the user who created it, so an
identity allowed to create consumers (``reader``, ``trader``) could point one at any deliver subject; the
daemon treats such messages on ``cmd.>`` as what they are (malformed commands, refused and counted). Closing
that needs separate NATS accounts with stream exports.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

IDENTITIES = ("daemon", "trader", "reader", "flows")

EVENT_SUBJECTS = ("orders.>", "trades.>", "positions.>", "balances.>", "transfers.>", "risk.>", "funding.>")
# JetStream's read side: stream and consumer info, message get (KV get), creating and reading consumers,
# acknowledging and flow control. No stream create/update/delete/purge, no publish to stored subjects.
JS_READ = (
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.>",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.MSG.GET.>",
    "$JS.API.DIRECT.GET.>",
    "$JS.API.CONSUMER.CREATE.>",
    "$JS.API.CONSUMER.INFO.>",
    "$JS.API.CONSUMER.NAMES.>",
    "$JS.API.CONSUMER.LIST.>",
    "$JS.API.CONSUMER.MSG.NEXT.>",
    "$JS.API.CONSUMER.DELETE.>",
    "$JS.ACK.>",
    "$JS.FC.>",
)
JS_ADMIN = ("$JS.API.>", "$KV.>", "$JS.ACK.>", "$JS.FC.>")
READ_SUBSCRIBE = (*EVENT_SUBJECTS, "md.>", "alerts.>")


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    deny_publish: tuple[str, ...] = ()
    deny_subscribe: tuple[str, ...] = ()
    allow_responses: bool = False


def inbox_prefix(identity: str) -> str:
    """The reply-subject prefix of an identity's requests (nats-py ``inbox_prefix``)."""
    return f"_INBOX.{identity}"


def permissions(identity: str) -> Permissions:
    """The subject permissions of ``identity`` (see the module's docstring)."""
    inbox = f"{inbox_prefix(identity)}.>"
    if identity == "daemon":
        return Permissions(
            publish=(*EVENT_SUBJECTS, "md.>", "alerts.>", *JS_ADMIN),
            subscribe=("cmd.>", "keys.rotate.>", *READ_SUBSCRIBE, inbox),
            deny_publish=("cmd.>",),
            allow_responses=True,
        )
    if identity == "trader":
        return Permissions(
            publish=("cmd.>", *JS_READ),
            subscribe=(*READ_SUBSCRIBE, inbox),
            deny_subscribe=("cmd.>",),
        )
    if identity == "reader":
        return Permissions(publish=JS_READ, subscribe=(*READ_SUBSCRIBE, inbox), deny_subscribe=("cmd.>",))
    if identity == "flows":
        return Permissions(
            publish=("transfers.>", "alerts.>", "keys.rotate.>", *JS_ADMIN),
            subscribe=("keys.rotate.>", *READ_SUBSCRIBE, inbox),
            deny_publish=("cmd.>",),
            deny_subscribe=("cmd.>",),
            allow_responses=True,
        )
    raise ValueError(f"unknown NATS identity {identity!r}; known: {', '.join(IDENTITIES)}")


# ----------------------------------------------------------------------------------------------- NKeys
_PREFIX_SEED = 18 << 3  # 'S'
_PREFIX_USER = 20 << 3  # 'U'


def _crc16(data: bytes) -> int:
    """CRC-16/XMODEM, the checksum of NKey strings."""
    return binascii.crc_hqx(data, 0)


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw + _crc16(raw).to_bytes(2, "little")).decode().rstrip("=")


def new_user_nkey() -> tuple[str, str]:
    """A fresh user NKey: (seed ``SU...``, public key ``U...``), Ed25519 from the OS's randomness."""
    key = Ed25519PrivateKey.generate()
    raw_seed = key.private_bytes_raw()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    seed = _encode(bytes([_PREFIX_SEED | (_PREFIX_USER >> 5), (_PREFIX_USER & 31) << 3]) + raw_seed)
    return seed, _encode(bytes([_PREFIX_USER]) + public)


def public_key_of(seed: str) -> str:
    """The public key (``U...``) of a user seed (``SU...``); ValueError for anything else."""
    text = seed.strip()
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("not an NKey seed (bad base32)") from None
    body, crc = raw[:-2], raw[-2:]
    if len(body) != 34 or _crc16(body).to_bytes(2, "little") != crc:
        raise ValueError("not an NKey seed (bad length or checksum)")
    if body[0] & 0xF8 != _PREFIX_SEED or ((body[0] & 7) << 5 | body[1] >> 3) != _PREFIX_USER:
        raise ValueError("not a user NKey seed (expected SU...)")
    key = Ed25519PrivateKey.from_private_bytes(body[2:])
    return _encode(bytes([_PREFIX_USER]) + key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


# ------------------------------------------------------------------------------------ credential files
class CredentialsError(RuntimeError):
    """A credentials file that cannot be read, written or trusted; the message names it and why."""


def credentials_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "keys" / "nats"


def seed_file(folder: Path, identity: str) -> Path:
    """The seed file of ``identity`` in the credentials folder ``folder`` (``credentials_dir(data_dir)``)."""
    permissions(identity)  # refuses an unknown identity
    return Path(folder) / f"{identity}.nk"


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_seed(path: Path) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise CredentialsError(
                f"NATS credentials {path} are readable by others (mode {mode:04o}); chmod 600 {path}"
            )
        seed = path.read_text().strip()
    except OSError as exc:
        raise CredentialsError(f"cannot read NATS credentials {path}: {exc.strerror or exc}") from exc
    try:
        public_key_of(seed)
    except ValueError as exc:
        raise CredentialsError(f"NATS credentials {path}: {exc}") from None
    return seed


def ensure_credentials(folder: Path) -> dict[str, str]:
    """Every identity's seed file, generated when missing (0600, folder 0700); returns identity -> public key.

    Existing seeds are kept (clients keep working across restarts); a seed readable by others or not a
    user seed is refused with the file's name."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    except OSError as exc:
        raise CredentialsError(f"cannot create the NATS credentials folder {folder}: {exc.strerror or exc}") from exc
    out: dict[str, str] = {}
    for identity in IDENTITIES:
        path = seed_file(folder, identity)
        if not path.exists():
            seed, public = new_user_nkey()
            try:
                _write_private(path, seed + "\n")
            except OSError as exc:
                raise CredentialsError(f"cannot write NATS credentials {path}: {exc.strerror or exc}") from exc
            out[identity] = public
        else:
            out[identity] = public_key_of(_read_seed(path))
    return out


def load_seed(folder: Path, identity: str) -> str:
    """The seed of ``identity`` (checked: a user seed, mode 0600)."""
    path = seed_file(folder, identity)
    if not path.exists():
        raise CredentialsError(
            f"no NATS credentials for {identity!r} at {path}: they are generated when nats-server is first "
            "started by `oms up` (or set OMS_NATS_CREDENTIALS_DIR to the folder holding them)"
        )
    return _read_seed(path)


def _list(items: tuple[str, ...]) -> str:
    return json.dumps(list(items))


def server_authorization(public_keys: dict[str, str]) -> str:
    """The nats-server ``authorization`` block: one NKey user per identity with its permissions."""
    users = []
    for identity in IDENTITIES:
        p = permissions(identity)
        publish = f"allow: {_list(p.publish)}" + (f", deny: {_list(p.deny_publish)}" if p.deny_publish else "")
        subscribe = f"allow: {_list(p.subscribe)}" + (f", deny: {_list(p.deny_subscribe)}" if p.deny_subscribe else "")
        responses = ", allow_responses: true" if p.allow_responses else ""
        users.append(
            f"    # {identity}\n"
            f'    {{nkey: "{public_keys[identity]}", permissions: {{publish: {{{publish}}}, '
            f"subscribe: {{{subscribe}}}{responses}}}}}"
        )
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"


def write_server_config(folder: Path, path: Path) -> Path:
    """Generate missing credentials in ``folder`` and write the server's authorization config to ``path``
    (0600)."""
    text = "# Generated by crypto-oms (oms.bus.auth) at each start: edit oms/bus/auth.py, not this file.\n"
    text += server_authorization(ensure_credentials(folder))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, text)
    except OSError as exc:
        raise CredentialsError(f"cannot write the nats-server config {path}: {exc.strerror or exc}") from exc
    return path
