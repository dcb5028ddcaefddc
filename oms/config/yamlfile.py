"""Read one config file as YAML, strictly, turning every way it can go wrong into a `Problem`.

* The path must be a regular file (a folder, a FIFO, a socket, a symbolic-link loop, a missing file or
  an unreadable one each get their own message; a FIFO is never opened, so it cannot block);
* text must be UTF-8; an invalid character (e.g. NUL) is reported by line and column;
* mapping keys must be text (YAML reads `1:` as a number, `~:` as null and `on:` as true) and unique;
  YAML merge keys (`<<: *anchor`, `<<: [*a, *b]`) are supported, and explicit keys override merged ones
  as the merge spec says;
* nesting is limited (`MAX_DEPTH`) so a hostile file cannot exhaust the interpreter's stack, and
  recursive aliases (`&a [*a]`) are refused.

Problems about a key name its dotted path (`defaults.max_open_orders`) with the line and column.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from oms.config.errors import Problem

MAX_DEPTH = 64
MAX_BYTES = 4 * 1024 * 1024
MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"


class _NodeError(Exception):
    def __init__(self, key: str, node: Node, reason: str):
        super().__init__(reason)
        self.key = key
        self.node = node
        self.reason = reason


class _Loader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses nesting deeper than MAX_DEPTH (before Python's stack runs out)."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _where(node: Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1} column {mark.column + 1}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe_key(node: Node) -> str:
    if isinstance(node, ScalarNode):
        kind = {
            "tag:yaml.org,2002:int": "a number",
            "tag:yaml.org,2002:float": "a number",
            "tag:yaml.org,2002:bool": "a boolean",
            "tag:yaml.org,2002:null": "null",
            "tag:yaml.org,2002:timestamp": "a date",
        }.get(node.tag, f"of type {node.tag}")
        hint = f"; quote it ('{node.value}') if it is meant as a name" if node.value not in ("", "~") else ""
        return f"key {node.value or '~'!r} is {kind}, not text{hint}"
    return f"a {'list' if isinstance(node, SequenceNode) else 'mapping'} cannot be a key"


def _check(node: Node, path: str, on_path: set[int], done: set[int]) -> None:
    """Walk the composed node graph: text keys, no duplicates, valid merges, no recursive aliases."""
    if id(node) in on_path:
        raise _NodeError(path, node, "recursive alias: an anchor contains itself")
    if id(node) in done or isinstance(node, ScalarNode):
        return
    on_path.add(id(node))
    try:
        if isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                _check(item, _join(path, str(i)), on_path, done)
        elif isinstance(node, MappingNode):
            seen: dict[str, Node] = {}
            sources: list[MappingNode] = []
            explicit = []
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    sources += _check_merge(value_node, path, on_path, done)
                    continue
                if not (isinstance(key_node, ScalarNode) and key_node.tag == STR_TAG):
                    raise _NodeError(path, key_node, _describe_key(key_node))
                key = key_node.value
                if key in seen:
                    raise _NodeError(
                        _join(path, key), key_node, f"duplicate key {key!r} (first at {_where(seen[key])})"
                    )
                seen[key] = key_node
                explicit.append((key_node, value_node))
                _check(value_node, _join(path, key), on_path, done)
            if sources:
                node.value = _merged(sources, seen) + explicit
    finally:
        on_path.discard(id(node))
    done.add(id(node))


def _check_merge(value: Node, path: str, on_path: set[int], done: set[int]) -> list[MappingNode]:
    sources = value.value if isinstance(value, SequenceNode) else [value]
    for source in sources:
        if not isinstance(source, MappingNode):
            raise _NodeError(path, source, "a merge key `<<` takes a mapping (`<<: *anchor`) or a list of them")
        _check(source, path, on_path, done)  # checks and flattens the source's own merges first
    return sources


def _merged(sources: list[MappingNode], explicit: dict[str, Node]) -> list:
    """The pairs a merge brings in: an explicit key wins over merged ones, an earlier source over a later
    (YAML's merge-key spec). Done here by key text: PyYAML 6.0.4's own flatten compares the keys' object
    ids, so a later source's key could win, and the merge would depend on string interning."""
    taken = set(explicit)
    pairs = []
    for source in sources:
        for key_node, value_node in source.value:
            if key_node.value not in taken:
                taken.add(key_node.value)
                pairs.append((key_node, value_node))
    return pairs


def _stat_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file, or None."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link: {path} -> {os.readlink(path)}"
        return f"file not found: {path}"
    except PermissionError:
        return f"cannot read {path}: permission denied on its folder {path.parent}"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop: {path} never reaches a file"
        return f"cannot read {path}: {exc.strerror or exc}"
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return f"{path} is a folder, not a YAML file"
    if stat.S_ISFIFO(mode):
        return f"{path} is a FIFO (named pipe), not a regular file; it was not opened"
    if stat.S_ISSOCK(mode):
        return f"{path} is a socket, not a regular file"
    if not stat.S_ISREG(mode):
        return f"{path} is a device, not a regular file"
    if st.st_size > MAX_BYTES:
        return f"{path} is {st.st_size} bytes; a config file is at most {MAX_BYTES} bytes"
    return None


def _reader_position(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"line {line} column {column}"


def read_yaml(path: Path, problems: list[Problem]) -> dict | None:
    """The file's top-level mapping ({} for an empty file), or None with the reason added to ``problems``."""
    name = path.name
    problem = _stat_problem(path)
    if problem:
        problems.append(Problem(name, "", problem))
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except PermissionError:
        problems.append(Problem(name, "", f"cannot read {path}: permission denied"))
        return None
    except OSError as exc:
        problems.append(Problem(name, "", f"cannot read {path}: {exc.strerror or exc}"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = _reader_position(raw[: exc.start].decode("utf-8", "replace"), exc.start)
        problems.append(Problem(name, where, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded"))
        return None
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader checks every character here
        node = loader.get_single_node()
        if node is None:
            return {}
        _check(node, "", set(), set())
        data: Any = loader.construct_document(node)
    except _NodeError as exc:
        key = f"{exc.key} ({_where(exc.node)})" if exc.key else _where(exc.node)
        problems.append(Problem(name, key, exc.reason))
        return None
    except yaml.reader.ReaderError as exc:
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        where = _reader_position(text, exc.position)
        problems.append(Problem(name, where, f"malformed YAML: invalid character {char} (not allowed in YAML)"))
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        reason = exc.problem or exc.context or str(exc)
        problems.append(Problem(name, where, f"malformed YAML: {reason}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(name, "", f"malformed YAML: {exc}"))
        return None
    except RecursionError:
        problems.append(Problem(name, "", f"nested too deeply (at most {MAX_DEPTH} levels)"))
        return None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        problems.append(Problem(name, "", f"expected a mapping at the top level, got {type(data).__name__}"))
        return None
    return data
