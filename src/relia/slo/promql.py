"""PromQL for Prometheus indicators: validation, and the few rewrites importers need.

Relia's Prometheus indicator queries follow Sloth's convention: a ratio leg (``good``, ``bad``, ``total``)
is a per-second rate over ``{{.window}}`` and ``errorRatio`` an error ratio over ``{{.window}}``; Relia
substitutes the window it needs (every alert window, the period) before it queries. A probe query is a
plain 0/1 gauge without the variable.

:func:`check` parses a query with ``promql-parser`` (PromQL as of Prometheus 2.45) after putting a sample
window in place of the variable. The rewrites (:func:`rate_over_window`, :func:`ratio_over_window`) turn a
query written for another tool, without the variable, into that shape. They edit the text the user wrote
rather than print the parsed tree again (the parser's printer drops subquery colons and string escapes),
and refuse, with :class:`PromQLRewriteError`, any query they cannot rewrite with certainty: the caller then
asks for the query to be written with ``{{.window}}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import promql_parser

WINDOW_VARIABLE = "{{.window}}"
# Sloth accepts spaces inside the braces; both spellings are read.
WINDOW_TEMPLATE = re.compile(r"\{\{\s*\.window\s*\}\}")
SAMPLE_WINDOW = "5m"
MAX_QUERY_LENGTH = 10_000

COMPARISONS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}

# A counter's per-second rate over the window; increase() is rate() times the window, so it becomes rate().
_COUNTER_RANGE_FUNCTIONS = {"rate": "rate", "increase": "rate"}
# A gauge that already is a rate (a recording rule, say) is averaged over the window.
_GAUGE_RANGE_FUNCTIONS = {"avg_over_time": "avg_over_time"}
# A ratio is unchanged when every range in it covers the same window.
_RATIO_RANGE_FUNCTIONS = {
    name: name
    for name in (
        "rate",
        "increase",
        "avg_over_time",
        "sum_over_time",
        "count_over_time",
        "min_over_time",
        "max_over_time",
    )
}


class PromQLRewriteError(ValueError):
    """A query that cannot be put over ``{{.window}}`` automatically; the message says why."""


def check(query: str) -> str | None:
    """None when ``query`` is valid PromQL once ``{{.window}}`` (spaces allowed) stands for a sample
    window; otherwise the reason, in one line."""
    if not isinstance(query, str) or not query.strip():
        return "the query is empty"
    if len(query) > MAX_QUERY_LENGTH:
        return f"the query is longer than {MAX_QUERY_LENGTH} characters"
    concrete = WINDOW_TEMPLATE.sub(SAMPLE_WINDOW, query)
    if "{{" in concrete:
        return "only the template variable {{.window}} is known; the query has another {{...}}"
    try:
        promql_parser.parse(concrete)
    except ValueError as exc:
        return f"not valid PromQL: {exc}"
    return None


def has_window(query: str) -> bool:
    """Whether the query already uses the ``{{.window}}`` variable (in either spelling)."""
    return bool(WINDOW_TEMPLATE.search(query))


def comparison(query: str, op: str, value: float) -> str:
    """A 0/1 gauge that is 1 where ``query <op> value`` holds: ``(query) <= bool 0.5``."""
    if op not in COMPARISONS:
        raise PromQLRewriteError(f"unknown comparison {op!r}; use one of {', '.join(COMPARISONS)}")
    return f"({query.strip()}) {COMPARISONS[op]} bool {_number(value)}"


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


# ------------------------------------------------------------------------------------------------ selectors


@dataclass(frozen=True)
class Selector:
    """A query that is one bare vector selector: ``name{matchers}`` with no offset or ``@``.
    ``matchers`` is the text between the braces as written (empty without braces)."""

    name: str
    matchers: str
    labels: frozenset[tuple[str, str, str]]  # (label, operator, value), for comparisons

    def label_value(self, label: str) -> str | None:
        for name, operator, value in self.labels:
            if name == label and operator == "=":
                return value
        return None

    def without(self, label: str) -> frozenset[tuple[str, str, str]]:
        return frozenset(matcher for matcher in self.labels if matcher[0] != label)


_MATCH_OPERATORS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
_BARE_SELECTOR = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(.*)\})?\s*", re.DOTALL)


def vector_selector(query: str) -> Selector | None:
    """The selector when ``query`` is one bare vector selector with a metric name, else None."""
    try:
        expr = promql_parser.parse(query)
    except ValueError:
        return None
    if not isinstance(expr, promql_parser.VectorSelector) or expr.offset is not None or expr.at is not None:
        return None
    match = _BARE_SELECTOR.fullmatch(query)
    if match is None or not match.group(1):
        return None
    labels = frozenset(
        (matcher.name, _MATCH_OPERATORS.get(str(matcher.op).rsplit(".", 1)[-1], str(matcher.op)), matcher.value)
        for matcher in expr.matchers.matchers
    )
    return Selector(name=match.group(1), matchers=(match.group(2) or "").strip(), labels=labels)


def metric_names(query: str) -> set[str]:
    """The metric names the query selects (empty when it does not parse)."""
    try:
        expr = promql_parser.parse(WINDOW_TEMPLATE.sub(SAMPLE_WINDOW, query))
    except ValueError:
        return set()
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(expr, pre_visit=visit)
    return names


# -------------------------------------------------------------------------------------------------- rewrites


def rate_over_window(query: str, *, counter: bool) -> str:
    """A ratio leg written without ``{{.window}}`` as a per-second rate over the window.

    * A query that already has the variable is returned as it is.
    * Ranges given to ``rate``/``increase`` (counters) or ``avg_over_time`` (gauges) become the window:
      ``sum(rate(x[5m]))`` -> ``sum(rate(x[{{.window}}]))``; ``increase`` becomes ``rate``.
    * Without any range, every selector is wrapped, so the rate is taken per series before any
      aggregation: a counter in ``rate(...[{{.window}}])``, a gauge (already a rate, as a recording rule
      is) in ``avg_over_time(...[{{.window}}])``: ``sum(x{a="b"})`` -> ``sum(rate(x{a="b"}[{{.window}}]))``.

    Anything else (subqueries, ``offset``/``@``, other range functions, ranges mixed with bare selectors)
    raises :class:`PromQLRewriteError`.
    """
    if has_window(query):
        return query
    functions = _COUNTER_RANGE_FUNCTIONS if counter else _GAUGE_RANGE_FUNCTIONS
    wrapper = "rate" if counter else "avg_over_time"
    scan = _scan(query)
    if scan.ranges:
        return _replace_ranges(query, scan, functions)
    return _wrap_selectors(query, scan, wrapper)


def ratio_over_window(query: str) -> str:
    """A ratio (0..1) written without ``{{.window}}`` as the ratio over the window: its ranges become the
    window when each is the argument of ``rate``, ``increase`` or a ``*_over_time`` function; a query
    without ranges (a ratio gauge) is averaged over the window as a subquery:
    ``avg_over_time((q)[{{.window}}:])``."""
    if has_window(query):
        return query
    scan = _scan(query)
    if scan.ranges:
        return _replace_ranges(query, scan, _RATIO_RANGE_FUNCTIONS)
    if scan.modifiers:
        raise PromQLRewriteError("offset and @ modifiers are not rewritten; write the query with {{.window}}")
    rewritten = f"avg_over_time(({query.strip()})[{WINDOW_VARIABLE}:])"
    _ensure_valid(rewritten)
    return rewritten


# ---------------------------------------------------------------------------------------------- the scanner

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>(?:[0-9]+(?:ms|s|m|h|d|w|y))+(?![a-zA-Z0-9_.]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<punct>=~|!~|!=|==|<=|>=|[-+*/%^<>=@:(){}\[\],])
    """,
    re.VERBOSE,
)
_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_OPERATOR_KEYWORDS = {"and", "or", "unless", "bool", "atan2"}
_NUMBER_WORDS = {"inf", "nan"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass
class _Range:
    """``[...]`` after a selector: ``start``/``end`` bound the text inside the brackets."""

    start: int
    end: int
    function: str | None  # the function whose argument the range selector is, if it is one
    function_start: int | None
    subquery: bool


@dataclass
class _Scan:
    selectors: list[tuple[int, int]]  # (start, end) of each vector selector's text
    ranges: list[_Range]
    modifiers: bool  # offset or @ somewhere


def _tokens(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            raise PromQLRewriteError(f"cannot read the query at {query[position : position + 20]!r}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append(_Token(kind, match.group(), match.start(), match.end()))
        position = match.end()
    return tokens


def _closing(tokens: list[_Token], index: int) -> int:
    """The index of the bracket that closes the one at ``index``."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    opening, depth = tokens[index].text, 0
    for position in range(index, len(tokens)):
        if tokens[position].text == opening:
            depth += 1
        elif tokens[position].text == pairs[opening]:
            depth -= 1
            if depth == 0:
                return position
    raise PromQLRewriteError(f"unbalanced {opening!r} in the query")


def _scan(query: str) -> _Scan:
    """Where the vector selectors and range brackets are, checked against the parsed query so the rewrite
    never edits what it misread."""
    try:
        parsed = promql_parser.parse(query)
    except ValueError as exc:
        raise PromQLRewriteError(f"not valid PromQL: {exc}") from None
    tokens = _tokens(query)
    selectors: list[tuple[int, int]] = []
    ranges: list[_Range] = []
    calls: list[tuple[str, int, int]] = []  # (function, start, index of its closing parenthesis)
    modifiers = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.kind == "ident" and token.text in _LABEL_LIST_KEYWORDS and following and following.text == "(":
            index = _closing(tokens, index + 1) + 1
            continue
        if token.kind == "ident" and following is not None and following.text in ("by", "without"):
            # An aggregation written with its grouping first: sum by (job) (...).
            index += 1
            continue
        if token.kind == "ident" and following is not None and following.text == "(":
            calls.append((token.text, token.start, _closing(tokens, index + 1)))
            index += 1
            continue
        if token.kind == "ident" and token.text.lower() in _OPERATOR_KEYWORDS | _NUMBER_WORDS:
            index += 1
            continue
        if token.kind == "ident" and token.text == "offset":
            modifiers = True
            index += 1
            continue
        if token.text == "@":
            modifiers = True
            index += 1
            continue
        if token.kind == "ident" or token.text == "{":
            end_index = index
            if token.kind == "ident" and following is not None and following.text == "{":
                end_index = _closing(tokens, index + 1)
            elif token.text == "{":
                end_index = _closing(tokens, index)
            selectors.append((token.start, tokens[end_index].end))
            index = end_index + 1
            continue
        if token.text == "[":
            close = _closing(tokens, index)
            inside = tokens[index + 1 : close]
            enclosing = [call for call in calls if call[2] > index and call[1] < token.start]
            function = enclosing[-1] if enclosing else None
            ranges.append(
                _Range(
                    start=token.end,
                    end=tokens[close].start,
                    function=function[0] if function else None,
                    function_start=function[1] if function else None,
                    subquery=any(":" in part.text for part in inside),
                )
            )
            index = close + 1
            continue
        index += 1

    counts = {"selectors": 0, "matrices": 0, "subqueries": 0}

    def count(node: object) -> None:
        if isinstance(node, promql_parser.MatrixSelector):
            counts["matrices"] += 1
        elif isinstance(node, promql_parser.SubqueryExpr):
            counts["subqueries"] += 1
        elif isinstance(node, promql_parser.VectorSelector):
            counts["selectors"] += 1

    promql_parser.walk(parsed, pre_visit=count)
    found_subqueries = sum(1 for found in ranges if found.subquery)
    if (
        counts["selectors"] != len(selectors)
        or counts["subqueries"] != found_subqueries
        or counts["matrices"] != len(ranges) - found_subqueries
    ):
        raise PromQLRewriteError("the query's shape is too unusual to rewrite; write it with {{.window}}")
    return _Scan(selectors, ranges, modifiers)


def _replace_ranges(query: str, scan: _Scan, functions: dict[str, str]) -> str:
    if scan.modifiers:
        raise PromQLRewriteError("offset and @ modifiers are not rewritten; write the query with {{.window}}")
    if any(found.subquery for found in scan.ranges):
        raise PromQLRewriteError("subqueries are not rewritten; write the query with {{.window}}")
    if len(scan.ranges) != len(scan.selectors):
        raise PromQLRewriteError("some selectors have a range and some do not; write the query with {{.window}}")
    for found in scan.ranges:
        if found.function not in functions:
            allowed = ", ".join(sorted(functions))
            raise PromQLRewriteError(
                f"a range given to {found.function or 'no function'}() cannot become the window here "
                f"(only {allowed}); write the query with {{{{.window}}}}"
            )
    # Edit from the end so earlier positions stay valid.
    edits: list[tuple[int, int, str]] = []
    for found in scan.ranges:
        edits.append((found.start, found.end, WINDOW_VARIABLE))
        assert found.function is not None and found.function_start is not None
        replacement = functions[found.function]
        if replacement != found.function:
            edits.append((found.function_start, found.function_start + len(found.function), replacement))
    rewritten = _apply(query, edits)
    _ensure_valid(rewritten)
    return rewritten


def _wrap_selectors(query: str, scan: _Scan, wrapper: str) -> str:
    if scan.modifiers:
        raise PromQLRewriteError("offset and @ modifiers are not rewritten; write the query with {{.window}}")
    if not scan.selectors:
        raise PromQLRewriteError("the query selects no series")
    edits = [
        edit
        for start, end in scan.selectors
        for edit in ((start, start, f"{wrapper}("), (end, end, f"[{WINDOW_VARIABLE}])"))
    ]
    rewritten = _apply(query, edits)
    _ensure_valid(rewritten)
    return rewritten


def _apply(query: str, edits: list[tuple[int, int, str]]) -> str:
    # From the end backwards, so the positions of the edits still to make stay valid.
    for start, end, text in sorted(edits, key=lambda edit: (edit[0], edit[1]), reverse=True):
        query = query[:start] + text + query[end:]
    return query


def _ensure_valid(rewritten: str) -> None:
    problem = check(rewritten)
    if problem is not None:
        raise PromQLRewriteError(f"the rewritten query would not be valid ({problem}); write it with {{{{.window}}}}")
