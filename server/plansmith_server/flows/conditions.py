"""The condition language of flow edges: a small grammar, parsed by recursive descent.

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") operand]
    operand    := literal | reference | "(" expr ")"
    reference  := "state" ("." name)+
    literal    := string | number | "true" | "false" | "null"

Strings are in double or single quotes (backslash escapes the next character). A
condition never runs as Python: it is a tree of the nodes below, evaluated on JSON
values. Limits (a condition comes from a caller): `MAX_LENGTH` characters and
`MAX_DEPTH` levels of nesting (each `not` and each parenthesis is one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 500
"""Characters of one condition."""
MAX_DEPTH = 8
"""Levels of nesting of one condition (`not` and parentheses)."""

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\.)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<bad>\S)
)""",
    re.X,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_ESCAPE = re.compile(r"\\(.)")


class ConditionError(ValueError):
    """A condition that does not parse; `position` is the offending character's index."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.position = position


@dataclass(frozen=True)
class Literal:
    """A constant: a string, a number, true, false or null."""

    value: Any


@dataclass(frozen=True)
class Ref:
    """`state.a.b`: the value at that path of the run's state."""

    path: tuple[str, ...]

    @property
    def key(self) -> str:
        """The top-level state key."""
        return self.path[0]

    def text(self) -> str:
        return "state." + ".".join(self.path)


@dataclass(frozen=True)
class Not:
    """`not x`."""

    operand: Node


@dataclass(frozen=True)
class BoolOp:
    """`a and b and ...` or `a or b or ...`."""

    op: str
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    """`a <op> b`."""

    op: str
    left: Node
    right: Node


Node = Literal | Ref | Not | BoolOp | Compare


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:  # only trailing blanks are left
            break
        kind = m.lastgroup or "bad"
        value = m.group(kind)
        start = m.start(kind)
        if kind == "bad":
            raise ConditionError(f"unexpected character {value!r}", start)
        if kind == "name" and value in _KEYWORDS:
            kind = value
        out.append(Token(kind, value, start))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self, kind: str, text: str | None = None) -> Token | None:
        t = self.tok
        if t.kind == kind and (text is None or t.text == text):
            self.i += 1
            return t
        return None

    def expect(self, kind: str, text: str, what: str) -> Token:
        t = self.take(kind, text)
        if t is None:
            raise ConditionError(f"expected {what}, found {self._shown()}", self.tok.pos)
        return t

    def _shown(self) -> str:
        return "the end" if self.tok.kind == "end" else repr(self.tok.text)

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(f"nested deeper than {MAX_DEPTH} levels", self.tok.pos)

    def parse(self) -> Node:
        node = self.or_()
        if self.tok.kind != "end":
            raise ConditionError(f"unexpected {self._shown()}", self.tok.pos)
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.take("or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_(self) -> Node:
        items = [self.not_()]
        while self.take("and"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_(self) -> Node:
        if self.take("not"):
            self.nest()
            operand = self.not_()
            self.depth -= 1
            return Not(operand)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        t = self.tok
        if t.kind == "op" and t.text in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            return Compare(t.text, left, self.operand())
        if self.take("in"):
            return Compare("in", left, self.operand())
        if t.kind == "not" and self.tokens[self.i + 1].kind == "in":
            self.i += 2
            return Compare("not in", left, self.operand())
        return left

    def operand(self) -> Node:
        t = self.tok
        if self.take("op", "("):
            self.nest()
            inner = self.or_()
            self.expect("op", ")", "')'")
            self.depth -= 1
            return inner
        if self.take("number"):
            number = float(t.text)
            return Literal(int(number) if number.is_integer() and "." not in t.text else number)
        if self.take("string"):
            return Literal(_ESCAPE.sub(r"\1", t.text[1:-1]))
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.take(word):
                return Literal(value)
        if t.kind == "name":
            if t.text != "state":
                raise ConditionError(
                    f"unknown name {t.text!r}: refer to the run's state as state.<key>", t.pos
                )
            self.i += 1
            path: list[str] = []
            while self.take("op", "."):
                part = self.take("name")
                if part is None:
                    raise ConditionError("expected a key after '.'", self.tok.pos)
                path.append(part.text)
            if not path:
                raise ConditionError("expected state.<key>", self.tok.pos)
            return Ref(tuple(path))
        raise ConditionError(f"expected a value, found {self._shown()}", t.pos)


def parse(text: str) -> Node:
    """The tree of `text`; raises ConditionError when it does not parse or passes a limit."""
    if len(text) > MAX_LENGTH:
        raise ConditionError(
            f"is {len(text)} characters long; at most {MAX_LENGTH} are allowed", MAX_LENGTH
        )
    if not text.strip():
        raise ConditionError("is empty", 0)
    return _Parser(text).parse()


def refs(node: Node) -> list[Ref]:
    """The state references of a condition, in order of appearance."""
    if isinstance(node, Ref):
        return [node]
    if isinstance(node, Not):
        return refs(node.operand)
    if isinstance(node, BoolOp):
        return [r for x in node.operands for r in refs(x)]
    if isinstance(node, Compare):
        return refs(node.left) + refs(node.right)
    return []


def literals(node: Node) -> list[str]:
    """The string literals of a condition (the planner scores words of them)."""
    if isinstance(node, Literal):
        return [node.value] if isinstance(node.value, str) else []
    if isinstance(node, Not):
        return literals(node.operand)
    if isinstance(node, BoolOp):
        return [s for x in node.operands for s in literals(x)]
    if isinstance(node, Compare):
        return literals(node.left) + literals(node.right)
    return []


def _lookup(state: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = state
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) and _number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _contains(item: Any, container: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list):
        return any(_equal(item, x) for x in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    return False


def _truthy(x: Any) -> bool:
    return x not in (None, False, 0, "") and x != [] and x != {}


def _value(node: Node, state: dict[str, Any]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Ref):
        return _lookup(state, node.path)
    return evaluate(node, state)


def evaluate(node: Node, state: dict[str, Any]) -> bool:
    """Whether the condition holds on `state` (a missing key reads as null; ordering
    compares numbers with numbers and strings with strings, else is false)."""
    if isinstance(node, Literal | Ref):
        return _truthy(_value(node, state))
    if isinstance(node, Not):
        return not evaluate(node.operand, state)
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(x, state) for x in node.operands)
        return any(evaluate(x, state) for x in node.operands)
    a, b = _value(node.left, state), _value(node.right, state)
    op = node.op
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op == "in":
        return _contains(a, b)
    if op == "not in":
        return not _contains(a, b)
    comparable = (_number(a) and _number(b)) or (isinstance(a, str) and isinstance(b, str))
    if not comparable:
        return False
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


@dataclass(frozen=True)
class Condition:
    """A parsed condition with its source text."""

    text: str
    tree: Node

    @property
    def keys(self) -> frozenset[str]:
        """The top-level state keys it reads."""
        return frozenset(r.key for r in refs(self.tree))

    def holds(self, state: dict[str, Any]) -> bool:
        return evaluate(self.tree, state)


def compile_condition(text: str) -> Condition:
    return Condition(text, parse(text))
