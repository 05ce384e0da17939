"""Rewrite Kubernetes-only CEL constructs into CEL the Rust evaluator runs.

Two constructs need it. ``cel.bind(v, init, body)`` is not known to the Rust
evaluator and becomes ``[init].map(v, body)[0]``, which binds ``v`` once. A
lookup of a domain the device lacks (``device.attributes["x.com"]``) must yield
an empty map in Kubernetes, while the Rust evaluator has no default-valued maps,
so each lookup becomes ``(d in device.attributes ? device.attributes[d] : {})``.
The rewrite works on tokens, so string literals are never changed.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "bound_variables",
    "device_paths",
    "literal_iterations",
    "rewrite_expression",
    "selects_field",
]

_MACROS: Final = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter",
                            "transformList", "transformMap", "transformMapEntry"})

_TOKEN = re.compile(
    r"""(?P<string>[rRbB]{0,2}(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
                              |'(?:\\.|[^\\'\n])*'|"(?:\\.|[^\\"\n])*"))
      |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<number>[0-9][0-9a-zA-Z_.]*)
      |(?P<space>\s+)
      |(?P<punct>\|\||&&|==|!=|<=|>=|\.\?|[^\s])""",
    re.VERBOSE | re.DOTALL,
)
_OPEN: Final = {"(": ")", "[": "]", "{": "}"}


def _tokens(expression: str) -> list[str]:
    return [match.group(0) for match in _TOKEN.finditer(expression)]


def _closing(tokens: list[str], start: int) -> int:
    """Return the index of the bracket that closes ``tokens[start]``, or -1."""
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index] in _OPEN:
            depth += 1
        elif tokens[index] in _OPEN.values():
            depth -= 1
            if depth == 0:
                return index
    return -1


def _split_arguments(tokens: list[str]) -> list[list[str]]:
    arguments: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        if token in _OPEN:
            depth += 1
        elif token in _OPEN.values():
            depth -= 1
        if token == "," and depth == 0:
            arguments.append([])
        else:
            arguments[-1].append(token)
    return arguments


def _significant(tokens: list[str], start: int, count: int) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    index = start
    while index < len(tokens) and len(found) < count:
        if not tokens[index].isspace():
            found.append((index, tokens[index]))
        index += 1
    return found


def _rewrite_bind(tokens: list[str]) -> list[str] | None:
    """Rewrite the first ``cel.bind(v, init, body)`` into ``[init].map(v, body)[0]``."""
    for index, token in enumerate(tokens):
        if token != "cel":
            continue
        ahead = _significant(tokens, index + 1, 3)
        if [text for _, text in ahead] != [".", "bind", "("]:
            continue
        open_index = ahead[2][0]
        close_index = _closing(tokens, open_index)
        arguments = _split_arguments(tokens[open_index + 1:close_index])
        if close_index < 0 or len(arguments) != 3:
            return None
        name, init, body = ("".join(argument).strip() for argument in arguments)
        replacement = f"[{init}].map({name}, {body})[0]"
        return [*tokens[:index], replacement, *tokens[close_index + 1:]]
    return None


def _rewrite_domain_lookups(tokens: list[str]) -> list[str]:
    """Make ``device.attributes[d]`` and ``device.capacity[d]`` yield ``{}`` for a missing d."""
    output: list[str] = []
    index = 0
    while index < len(tokens):
        ahead = _significant(tokens, index + 1, 3)
        texts = [text for _, text in ahead]
        is_lookup = (tokens[index] == "device" and len(texts) == 3 and texts[0] == "."
                     and texts[1] in ("attributes", "capacity") and texts[2] == "["
                     and (not output or output[-1] != "."))
        if not is_lookup:
            output.append(tokens[index])
            index += 1
            continue
        field, open_index = texts[1], ahead[2][0]
        close_index = _closing(tokens, open_index)
        if close_index < 0:
            output.extend(tokens[index:])
            break
        key = "".join(_rewrite_domain_lookups(tokens[open_index + 1:close_index])).strip()
        output.append(f"(({key}) in device.{field} ? device.{field}[{key}] : {{}})")
        index = close_index + 1
    return output


def rewrite_expression(expression: str) -> str:
    """Rewrite Kubernetes-only constructs into CEL the Rust evaluator runs.

    ``cel.bind`` becomes a one-element ``map`` and every ``device.attributes[...]``
    or ``device.capacity[...]`` lookup gets the empty-map default for an unknown
    domain. String literals are left untouched.
    """
    tokens = _tokens(expression)
    while (rewritten := _rewrite_bind(tokens)) is not None:
        tokens = _tokens("".join(rewritten))
    return "".join(_rewrite_domain_lookups(tokens))


def bound_variables(expression: str) -> set[str]:
    """Return the names that comprehension macros bind (``x`` in ``list.all(x, ...)``)."""
    tokens = [token for token in _tokens(expression) if not token.isspace()]
    bound: set[str] = set()
    for index in range(len(tokens) - 3):
        if tokens[index] == "." and tokens[index + 1] in _MACROS and tokens[index + 2] == "(":
            first = index + 3
            bound.add(tokens[first])
            if first + 3 < len(tokens) and tokens[first + 1] == "," and tokens[first + 3] == ",":
                bound.add(tokens[first + 2])
    return bound


def selects_field(expression: str, variable: str, field: str) -> bool:
    """Tell whether ``expression`` reads ``variable.field`` (outside string literals)."""
    tokens = [token for token in _tokens(expression) if not token.isspace()]
    return any(tokens[index:index + 3] == [variable, ".", field]
               and (index == 0 or tokens[index - 1] != ".")
               for index in range(len(tokens) - 2))


_PLAIN_STRING: Final = re.compile(r"""^(["'])([^"'\\]*)\1$""")
_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DevicePath = tuple[str, ...]


def _literal(token: str) -> str | None:
    match = _PLAIN_STRING.match(token)
    return match.group(2) if match else None


def _path_at(tokens: list[str], index: int) -> DevicePath | None:
    """Read the access chain that starts at ``tokens[index] == "device"``."""
    ahead = tokens[index + 1:index + 9]
    if ahead[:2] == [".", "driver"] or ahead[:2] == [".", "allowMultipleAllocations"]:
        return (ahead[1],)
    if len(ahead) < 7 or ahead[0] != "." or ahead[1] not in ("attributes", "capacity"):
        return None
    domain = _literal(ahead[3]) if ahead[2] == "[" and ahead[4] == "]" else None
    if domain is None:
        return None
    if ahead[5] == "." and _IDENTIFIER.match(ahead[6]):
        # ``.exists_one(...)`` and other calls on the domain map read the whole map.
        called = len(ahead) > 7 and ahead[7] == "("
        return None if called else (ahead[1], domain, ahead[6])
    if ahead[5] == "[" and len(ahead) > 7 and ahead[7] == "]":
        identifier = _literal(ahead[6])
        return None if identifier is None else (ahead[1], domain, identifier)
    return None


def device_paths(expression: str) -> frozenset[DevicePath] | None:
    """Return every part of ``device`` the expression reads, or None if it reads whole maps.

    Parts are ``("driver",)`` or ``(field, domain, id)`` with literal domain and id,
    as in ``device.attributes["gpu.nvidia.com"].productName``. An expression
    that reads anything else (a whole domain map, a computed key, a macro over
    a map) returns None, and then the whole device is needed.
    """
    tokens = [token for token in _tokens(expression) if not token.isspace()]
    paths: set[DevicePath] = set()
    for index, token in enumerate(tokens):
        if token != "device" or (index and tokens[index - 1] == "."):
            continue
        path = _path_at(tokens, index)
        if path is None:
            return None
        paths.add(path)
    return frozenset(paths)


def _list_length(tokens: list[str], close: int) -> int | None:
    """Count the elements of the list literal that ends at ``tokens[close] == "]"``."""
    depth = 0
    for index in range(close, -1, -1):
        token = tokens[index]
        if token in _OPEN.values():
            depth += 1
        elif token in _OPEN:
            depth -= 1
            if depth == 0:
                if token != "[" or (index and tokens[index - 1] not in _OPEN and tokens[index - 1]
                                    not in (",", "&&", "||", "!", "==", "!=", "?", ":")):
                    return None
                inner = tokens[index + 1:close]
                return len(_split_arguments(inner)) if inner else 0
    return None


def literal_iterations(expression: str) -> int:
    """Return the most loop iterations nested macros over list literals need.

    ``[1, 2, 3].all(x, [1, 2].exists(y, ...))`` needs 3 * 2 = 6 iterations.
    Macros over anything but a list literal count as one iteration, so the
    result is a lower bound on the work an evaluation does.
    """
    tokens = [token for token in _tokens(expression) if not token.isspace()]
    spans: list[tuple[int, int, int]] = []
    for index in range(1, len(tokens) - 2):
        if tokens[index] != "." or tokens[index + 1] not in _MACROS or tokens[index + 2] != "(":
            continue
        size = _list_length(tokens, index - 1) if tokens[index - 1] == "]" else None
        close = _closing(tokens, index + 2)
        if size is not None and close > 0:
            spans.append((index + 2, close, size))
    best = 1
    for start, end, size in spans:
        product = size
        for other_start, other_end, other_size in spans:
            if other_start < start and end <= other_end:
                product *= other_size
        best = max(best, product)
    return best
