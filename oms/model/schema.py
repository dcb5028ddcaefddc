"""JSON Schema of the model's messages, generated from the structs into ``docs/schema/``.

Other services validate NATS payloads and file lines against these files. One file per message type
(``fill.schema.json``, named by its ``type`` tag), ``instrument_spec.schema.json``, and
``message.schema.json`` for the tagged union of all messages. Regenerate after changing a struct::

    python -m oms.model.schema            # writes docs/schema/
    python -m oms.model.schema --check    # exit 1 and name the stale files if they differ

tests/unit/test_model_schema.py fails while the committed files are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import msgspec

from oms.model.codec import MESSAGE_TYPES, Message
from oms.model.commands import COMMAND_VERSION, CommandReply, CommandRequest
from oms.model.instrument import InstrumentSpec

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"
SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def _document(t: object, title: str) -> str:
    doc = {"$schema": SCHEMA_URI, "title": title, **msgspec.json.schema(t)}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def schemas() -> dict[str, str]:
    """File name -> JSON text of every schema document."""
    out = {"message.schema.json": _document(Message, "crypto-oms model message (any type, tagged by 'type')")}
    for t in MESSAGE_TYPES:
        tag = t.__struct_config__.tag
        out[f"{tag}.schema.json"] = _document(t, f"crypto-oms {tag}")
    out["instrument_spec.schema.json"] = _document(InstrumentSpec, "crypto-oms instrument_spec")
    out["command_request.schema.json"] = _document(
        CommandRequest, f"crypto-oms order command request (cmd.order.*.*), version {COMMAND_VERSION}"
    )
    out["command_reply.schema.json"] = _document(
        CommandReply, f"crypto-oms order command reply, version {COMMAND_VERSION}"
    )
    return out


def stale(directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of files that are missing, different, or no longer generated."""
    want = schemas()
    have = {p.name for p in directory.glob("*.schema.json")} if directory.is_dir() else set()
    bad = [n for n, text in want.items() if not (directory / n).is_file() or (directory / n).read_text() != text]
    return sorted(bad + [n for n in have if n not in want])


def write(directory: Path = DEFAULT_DIR) -> list[str]:
    """Write every schema (and remove ones no longer generated); returns the names written or removed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = stale(directory)
    want = schemas()
    for name in changed:
        path = directory / name
        if name in want:
            path.write_text(want[name])
        else:
            path.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oms.model.schema", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="directory (default: docs/schema/)")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if any file is stale")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.out)
        for name in bad:
            print(f"stale: {args.out / name}", file=sys.stderr)
        return 1 if bad else 0
    for name in write(args.out):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
