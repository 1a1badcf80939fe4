"""A small evaluator for Xero's ``where`` filter (a C#-like expression).

Supported: ``Field == "text"`` / ``!=`` / ``<`` ``>`` ``<=`` ``>=``, ``Guid("…")``,
numbers, ``true``/``false``/``null``, ``DateTime(y,m,d)``, ``.Contains("…")``,
``.StartsWith("…")``, ``.EndsWith("…")``, ``.ToLower()``/``.ToUpper()``, joined by
``AND``/``OR``/``&&``/``||`` with parentheses and ``NOT``/``!``. Strings use
``\\"`` for an embedded quote. Text compares case- and accent-insensitively,
as Xero's database collation does.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Union

from .wire import fold


class WhereError(ValueError):
    """The expression could not be parsed (Xero answers 400 QueryParseException)."""


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>==|!=|<=|>=|<|>|&&|\|\||!|\(|\)|,|\.)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass
class _Token:
    kind: str
    text: str


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(text, pos)
        if not match:
            raise WhereError(f"unexpected character at position {pos}: {text[pos:pos + 10]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind)))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


Getter = Callable[[str], Any]
Node = Callable[[Getter], bool]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenise(text)
        self.i = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise WhereError("unexpected end of expression")
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise WhereError(f"expected {text!r}, got {token.text!r}")

    def is_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.text.upper() in words and token.kind in ("word", "op")

    # expr := and (OR and)*
    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek() is not None:
            raise WhereError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.is_word("OR", "||"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda get, ps=parts: any(p(get) for p in ps))

    def parse_and(self) -> Node:
        parts = [self.parse_unary()]
        while self.is_word("AND", "&&"):
            self.take()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else (lambda get, ps=parts: all(p(get) for p in ps))

    def parse_unary(self) -> Node:
        if self.is_word("NOT", "!"):
            self.take()
            inner = self.parse_unary()
            return lambda get: not inner(get)
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.parse_or()
            self.expect(")")
            return inner
        return self.parse_comparison()

    def parse_field(self) -> str:
        token = self.take()
        if token.kind != "word":
            raise WhereError(f"expected a field name, got {token.text!r}")
        path = [token.text]
        # Dotted paths (Contact.ContactID) until a method call appears.
        while self.peek() is not None and self.peek().text == "." and self._next_is_field():  # type: ignore[union-attr]
            self.take()
            path.append(self.take().text)
        return ".".join(path)

    def _next_is_field(self) -> bool:
        if self.i + 2 < len(self.tokens) and self.tokens[self.i + 2].text == "(":
            return False
        return self.i + 1 < len(self.tokens) and self.tokens[self.i + 1].kind == "word"

    def parse_comparison(self) -> Node:
        field_name = self.parse_field()
        while self.peek() is not None and self.peek().text == ".":  # type: ignore[union-attr]
            self.take()
            method = self.take().text.lower()
            self.expect("(")
            if method in ("tolower", "toupper", "trim"):
                self.expect(")")
                continue  # comparisons are already case-insensitive
            if method in ("contains", "startswith", "endswith"):
                needle = self.parse_literal()
                self.expect(")")
                return _text_method(field_name, method, needle)
            raise WhereError(f"unsupported method {method!r}")
        op = self.take()
        if op.text not in ("==", "!=", "<", ">", "<=", ">="):
            raise WhereError(f"expected a comparison operator, got {op.text!r}")
        literal = self.parse_literal()
        return _compare(field_name, op.text, literal)

    def parse_literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return _unquote(token.text)
        if token.kind == "number":
            return Decimal(token.text)
        word = token.text.lower()
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if word == "guid":
            self.expect("(")
            value = self.take()
            self.expect(")")
            return (_unquote(value.text) if value.kind == "string" else value.text).lower()
        if word == "datetime":
            self.expect("(")
            numbers = [int(self.take().text)]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                numbers.append(int(self.take().text))
            self.expect(")")
            try:
                if len(numbers) > 3:  # DateTime(y,m,d,h,m,s): an instant, in UTC
                    return dt.datetime(*numbers[:6], tzinfo=dt.timezone.utc)
                return dt.date(*numbers[:3])
            except (TypeError, ValueError) as exc:
                raise WhereError(str(exc)) from exc
        raise WhereError(f"unexpected {token.text!r}")


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return fold(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def _compare(field_name: str, op: str, literal: Any) -> Node:
    want = _norm(literal)

    def node(get: Getter) -> bool:
        have, want_here = _align(_norm(get(field_name)), want)
        if op == "==":
            return have == want_here
        if op == "!=":
            return have != want_here
        if have is None or want_here is None:
            return False
        try:
            return {"<": have < want_here, ">": have > want_here, "<=": have <= want_here,
                    ">=": have >= want_here}[op]
        except TypeError:
            return False

    return node


def _align(have: Any, want: Any) -> tuple[Any, Any]:
    """An instant (UpdatedDateUTC) compared with a ``DateTime(y,m,d)`` day: the day's midnight UTC."""
    if isinstance(have, dt.datetime) and isinstance(want, dt.date) and not isinstance(want, dt.datetime):
        return have, dt.datetime(want.year, want.month, want.day, tzinfo=dt.timezone.utc)
    if isinstance(want, dt.datetime) and isinstance(have, dt.date) and not isinstance(have, dt.datetime):
        return dt.datetime(have.year, have.month, have.day, tzinfo=dt.timezone.utc), want
    return have, want


def _text_method(field_name: str, method: str, needle: Any) -> Node:
    want = fold(str(needle))

    def node(get: Getter) -> bool:
        have = get(field_name)
        if not isinstance(have, str):
            return False
        have = fold(have)
        if method == "contains":
            return want in have
        if method == "startswith":
            return have.startswith(want)
        return have.endswith(want)

    return node


WhereFilter = Union[Node, None]


def compile_where(text: str | None) -> WhereFilter:
    """Compile once, evaluate per record with a getter ``field -> value``."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()
