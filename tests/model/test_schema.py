"""docs/schema/ is generated from the structs and kept current; the schemas accept the model's messages."""

from __future__ import annotations

import json
import subprocess
import sys

from oms.model import encode
from oms.model import schema as schema_mod
from tests.model.samples import SAMPLES


def test_committed_schema_is_current():
    stale = schema_mod.stale()
    assert not stale, f"docs/schema/ is stale ({stale}): run `python -m oms.model.schema`"


def test_regenerate_and_check_cli(tmp_path):
    run = [sys.executable, "-m", "oms.model.schema", "--out", str(tmp_path)]
    assert subprocess.run([*run, "--check"], capture_output=True).returncode == 1
    assert subprocess.run(run, capture_output=True, check=True).returncode == 0
    assert subprocess.run([*run, "--check"], capture_output=True).returncode == 0
    (tmp_path / "fill.schema.json").write_text("{}")
    (tmp_path / "gone.schema.json").write_text("{}")
    res = subprocess.run([*run, "--check"], capture_output=True, text=True)
    assert res.returncode == 1 and "fill.schema.json" in res.stderr and "gone.schema.json" in res.stderr
    schema_mod.write(tmp_path)
    assert not (tmp_path / "gone.schema.json").exists() and schema_mod.stale(tmp_path) == []


def test_schema_documents_every_message():
    docs = schema_mod.schemas()
    union = json.loads(docs["message.schema.json"])
    tags = {json.loads(encode(s))["type"] for s in SAMPLES}
    assert set(union["discriminator"]["mapping"]) == tags
    fill = json.loads(docs["fill.schema.json"])
    props = fill["$defs"]["Fill"]["properties"]
    assert props["price"]["type"] == "string" and "pattern" in props["price"]
    assert props["event_ns"] == {
        "description": "nanoseconds since the Unix epoch, UTC",
        "minimum": 0,
        "type": "integer",
    }


def test_no_pattern_lets_a_trailing_newline_through():
    """A bare ``$`` matches before a final newline: "1.5\\n" was a decimal, "binance\\n" an exchange."""
    import msgspec
    import pytest

    from oms.model.fields import AccountStr, AssetStr, ClientOrderIdStr, DecimalStr, ExchangeStr, SymbolStr

    cases = [(DecimalStr, "1.5"), (AccountStr, "binance/sub_mm"), (ExchangeStr, "binance"), (SymbolStr, "BTC/USDT"),
             (AssetStr, "USDT"), (ClientOrderIdStr, "abc-1")]  # fmt: skip
    for kind, good in cases:
        assert msgspec.convert(good, kind) == good
        for bad in (good + "\n", good + "\n\n", "\n" + good):
            with pytest.raises(msgspec.ValidationError):
                msgspec.convert(bad, kind)
