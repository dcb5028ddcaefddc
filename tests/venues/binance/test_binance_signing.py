"""``WsSigner``: the WebSocket-API signature is Binance's rule (hex HMAC-SHA256 of the params sorted by name,
``k=v`` joined by ``&``), equal to the standard library's HMAC for any secret and message, and to what
python-binance computes for the same params."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from oms.venues.binance.signing import WsSigner


@given(st.text(max_size=150), st.binary(max_size=300))
def test_the_signature_is_hmac_sha256(secret, message):
    assert WsSigner("key", secret).hexdigest(message) == hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12)
values = st.one_of(st.integers(0, 2**62), st.booleans(), st.from_regex(r"\A[A-Za-z0-9._-]{0,20}\Z"))


@given(st.dictionaries(names, values, max_size=12), st.integers(0, 2**45))
def test_params_are_signed_sorted_as_binance_verifies(params, ts):
    params = {k: v for k, v in params.items() if k not in ("apiKey", "timestamp", "signature")}
    signed = WsSigner("K" * 64, "S" * 64).sign(dict(params), ts)
    text = {k: ("true" if v is True else "false" if v is False else v) for k, v in signed.items() if k != "signature"}
    query = urlencode(sorted(text.items()))  # python-binance's way for these ASCII values
    assert signed["signature"] == hmac.new(b"S" * 64, query.encode(), hashlib.sha256).hexdigest()
    assert (signed["apiKey"], signed["timestamp"]) == ("K" * 64, ts)
    again = WsSigner("K" * 64, "S" * 64).sign(dict(reversed(list(params.items()))), ts)  # another order of names
    assert again["signature"] == signed["signature"]
