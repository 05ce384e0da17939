"""YAML input with line numbers, and YAML output that Kubernetes reads back unchanged.

Input is parsed with YAML 1.1 rules, as Kubernetes decodes manifests (go-yaml
v2): ``on``, ``yes`` and ``y`` are booleans and ``010`` is octal. Each
document keeps its ruamel node tree so that an error found later, at a field
path, can be reported with the line and column of that field.

Output quotes every string that a YAML 1.1 or 1.2 reader would turn into a
boolean, number, null or timestamp, so a label value ``"on"`` or ``"1e3"``
stays a string when ``kubectl apply`` reads the file.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MantissaNoDotYAML1_1Warning, MarkedYAMLError
from ruamel.yaml.representer import RoundTripRepresenter

from gpuplane.model.errors import InputError, Location, ManifestError

__all__ = [
    "Document",
    "FieldPath",
    "dump_documents",
    "format_path",
    "load_documents",
    "load_text",
    "needs_quotes",
]

FieldPath = tuple[str | int, ...]


@dataclass(slots=True)
class Document:
    """One YAML document: plain Python data plus the node tree that knows positions."""

    data: Any
    source: str
    index: int
    _tree: Any

    def locate(self, path: FieldPath) -> Location:
        """Return the location of ``path`` in this document (the deepest part that exists)."""
        line, column = _position(self._tree, path)
        return Location(source=self.source, line=line, column=column, field=format_path(path))


def format_path(path: FieldPath) -> str:
    """Format a field path the way kubectl does: ``spec.resourceGroups[0].flavors[1].name``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


def _position(tree: Any, path: FieldPath) -> tuple[int | None, int | None]:
    line: int | None = None
    column: int | None = None
    if isinstance(tree, (CommentedMap, CommentedSeq)) and tree.lc.line is not None:
        line, column = tree.lc.line + 1, tree.lc.col + 1
    node = tree
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            key_line, key_col = node.lc.key(part)
            line, column = key_line + 1, key_col + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            item_line, item_col = node.lc.item(part)
            line, column = item_line + 1, item_col + 1
            node = node[part]
        else:
            break
    return line, column


def _plain(node: Any) -> Any:
    """Convert ruamel's round-trip nodes into plain dicts, lists and scalars."""
    if isinstance(node, CommentedMap):
        return {_plain_key(key): _plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _plain_key(key: Any) -> Any:
    if isinstance(key, str):
        return str(key)
    return _plain(key)


def _reader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.version = (1, 1)
    yaml.allow_duplicate_keys = False
    return yaml


def load_text(text: str, source: str, *, error: type[InputError] = ManifestError) -> list[Document]:
    """Parse every document of ``text``; empty documents are dropped.

    Raises ``error`` (a :class:`ManifestError` unless told otherwise) with the
    line and column of a YAML syntax mistake.
    """
    documents: list[Document] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MantissaNoDotYAML1_1Warning)
            trees = list(_reader().load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(
            source=source,
            line=mark.line + 1 if mark is not None else None,
            column=mark.column + 1 if mark is not None else None,
        )
        problem = f"The file is not valid YAML: {exc.problem or exc.context}."
        raise error(problem=problem, location=location,
                    hint="Fix the YAML syntax at that line (indentation, quotes, colons).") from exc
    for index, tree in enumerate(trees):
        if tree is None:
            continue
        documents.append(Document(data=_plain(tree), source=source, index=index, _tree=tree))
    return documents


def load_documents(path: Path, *, error: type[InputError] = ManifestError) -> list[Document]:
    """Read and parse a YAML file; see :func:`load_text`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(problem="The file does not exist.", location=Location(source=str(path)),
                    hint="Check the path.") from exc
    except UnicodeDecodeError as exc:
        raise error(problem="The file is not UTF-8 text.", location=Location(source=str(path)),
                    hint="Save the file as UTF-8.") from exc
    except IsADirectoryError as exc:
        raise error(problem="Expected a file, found a folder.", location=Location(source=str(path)),
                    hint="Pass a YAML file here.") from exc
    return load_text(text, str(path), error=error)


# --- output -------------------------------------------------------------------------------------

_YAML11_BOOL = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
                          r"|on|On|ON|off|Off|OFF)$")
_YAML_NULL = re.compile(r"^(?:~|null|Null|NULL)$")
_YAML_INT = re.compile(r"^[-+]?(?:0b[01_]+|0o?[0-7_]+|[0-9][0-9_]*|0x[0-9a-fA-F_]+"
                       r"|[1-9][0-9_]*(?::[0-5]?[0-9])+)$")
_YAML_FLOAT = re.compile(r"^[-+]?(?:(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][-+]?[0-9]+)?"
                         r"|[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|\.(?:inf|Inf|INF))$"
                         r"|^\.(?:nan|NaN|NAN)$")
_YAML_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?$")
_SPECIAL = {"", "=", "<<"}


def needs_quotes(text: str) -> bool:
    """Tell whether a plain ``text`` would be read as something other than a string.

    True for YAML 1.1 booleans (``y``, ``on``), nulls, integers in any base,
    floats with or without a dot (``1e3``), sexagesimal numbers and dates.
    """
    if text in _SPECIAL:
        return True
    if _YAML11_BOOL.match(text) or _YAML_NULL.match(text):
        return True
    if _YAML_INT.match(text) or _YAML_TIMESTAMP.match(text):
        return True
    return bool(any(ch.isdigit() for ch in text) and _YAML_FLOAT.match(text)) or text in {
        ".inf", "-.inf", "+.inf", ".nan"}


class _SafeRepresenter(RoundTripRepresenter):
    """Represent strings so that Kubernetes' YAML 1.1 reader gets them back as strings."""


def _represent_str(representer: RoundTripRepresenter, data: str) -> Any:
    if "\n" in data:
        return representer.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    style = '"' if needs_quotes(data) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_SafeRepresenter.add_representer(str, _represent_str)


def _writer() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Representer = _SafeRepresenter
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=2, offset=0)
    yaml.width = 4096
    return yaml


def _to_commented(value: Any) -> Any:
    if isinstance(value, Mapping):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _to_commented(item)
        return node
    if isinstance(value, Sequence) and not isinstance(value, str):
        return CommentedSeq(_to_commented(item) for item in value)
    return value


def dump_documents(documents: Sequence[Any]) -> str:
    """Serialise objects as a multi-document YAML stream, keys in the given order."""
    stream = io.StringIO()
    writer = _writer()
    for position, document in enumerate(documents):
        if position:
            stream.write("---\n")
        writer.dump(_to_commented(document), stream)
    return stream.getvalue()


def iter_objects(documents: Sequence[Document]) -> Iterator[tuple[Document, FieldPath, Any]]:
    """Yield each Kubernetes object with its path, unpacking ``kind: List`` documents."""
    for document in documents:
        data = document.data
        if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list):
            for position, item in enumerate(data["items"]):
                yield document, ("items", position), item
        else:
            yield document, (), data
