"""The condition language of rulesets: `{type, key, operator, values}` checked against an event.

A key is a path into the event's JSON: `alerts[0].labels.severity`,
`products[0].count`, `labels["app.kubernetes.io/name"]`, `alerts[*].status`
(`[*]`: any element; `[-1]`: the last). A path can find nothing (a key is
missing, an index is out of range, a step meets a value of the wrong kind),
one value, or several (through `[*]`).

Operators, over what the path found:

* `equal`: some found value equals some value in `values`;
* `contains`: some found string has some value as a substring, or some found
  array has an element equal to some value, or some found object has some value
  as a key;
* `greater` / `less`: some found number (or numeric string) is greater / less
  than the one value;
* `matches`: some found scalar, as text, matches some regular expression
  (RE2 syntax, run by RE2 in time linear in the text: a tenant's pattern can
  never backtrack a worker into a stall; backreferences and look-arounds,
  which need backtracking, are refused when the ruleset is saved);
* `exists`: the path found something (null included);
* `not-equal`, `not-contains`, `not-exists`: exactly the negation of their
  positive twin, so a missing key satisfies `not-equal` ("no severity is
  critical") and never `equal`.

Equality forgives JSON's loose typing the way alert payloads need: 5 equals
"5" and 5.0, true equals "true", null equals "null"; other values of different
kinds are simply unequal. Several conditions all must hold; none at all match
everything.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

OPERATORS = ("equal", "not-equal", "contains", "not-contains", "greater", "less",
             "exists", "not-exists", "matches")
NEGATED = {"not-equal": "equal", "not-contains": "contains", "not-exists": "exists"}
VALUELESS = ("exists", "not-exists")
ONE_NUMBER = ("greater", "less")
MAX_REGEX = 256        # characters: user regexes run on every event of the organisation
MAX_SUBJECT = 4096     # characters of a found value a regex looks at
ANY = object()         # the `[*]` step

_STEP = re.compile(r"""
    \.?(?P<name>[A-Za-z0-9_@$:/-]+)            # .name (or a leading name)
  | \[(?P<index>-?\d+)\]                       # [3], [-1]
  | \[(?P<any>\*)\]                            # [*]
  | \[(?P<quote>["'])(?P<quoted>.*?)(?P=quote)\]  # ["a.b"], ['a b']
""", re.X)


class PathError(ValueError):
    """A key that is not a path, with what to write instead."""


@lru_cache(maxsize=4096)
def parse_path(key: str) -> tuple[Any, ...]:
    """`alerts[0].labels.severity` -> ("alerts", 0, "labels", "severity")."""
    steps: list[Any] = []
    at = 0
    while at < len(key):
        found = _STEP.match(key, at)
        if found is None or found.end() == at or (found["name"] and at > 0 and key[at] != "."
                                                   and key[at - 1] != "]"):
            raise PathError(f"{key!r} is not a key path at position {at}: write e.g. "
                            "alerts[0].labels.severity or labels[\"app.kubernetes.io/name\"]")
        if found["name"] is not None:
            steps.append(found["name"])
        elif found["index"] is not None:
            steps.append(int(found["index"]))
        elif found["any"] is not None:
            steps.append(ANY)
        else:
            steps.append(found["quoted"])
        at = found.end()
    if not steps:
        raise PathError("the key is empty: name a field, e.g. status or alerts[0].labels.severity")
    return tuple(steps)


def resolve(document: Any, path: Sequence[Any]) -> list[Any]:
    """Every value the path finds in the document (none when a step finds nothing)."""
    if ANY not in path:  # the usual case: at most one value, no lists to build
        value = document
        for step in path:
            if isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return []
            elif not isinstance(value, dict) or step not in value:
                return []
            value = value[step]
        return [value]
    current = [document]
    for step in path:
        following = []
        for value in current:
            if step is ANY:
                if isinstance(value, list):
                    following.extend(value)
                elif isinstance(value, dict):
                    following.extend(value.values())
            elif isinstance(step, int):
                if isinstance(value, list) and -len(value) <= step < len(value):
                    following.append(value[step])
            elif isinstance(value, dict) and step in value:
                following.append(value[step])
        current = following
        if not current:
            break
    return current


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def same(found: Any, expected: Any) -> bool:
    """JSON equality, forgiving numbers in strings and true/null spelled as text."""
    if isinstance(found, bool) or isinstance(expected, bool):
        if isinstance(found, bool) and isinstance(expected, bool):
            return found is expected
        text = expected if isinstance(found, bool) else found
        flag = found if isinstance(found, bool) else expected
        return isinstance(text, str) and text.strip().lower() == ("true" if flag else "false")
    if found is None or expected is None:
        other = expected if found is None else found
        return other is None or (isinstance(other, str) and other.strip().lower() == "null")
    if isinstance(found, str) and isinstance(expected, str):
        return found == expected
    left, right = _number(found), _number(expected)
    if left is not None and right is not None and not (isinstance(found, str) and isinstance(expected, str)):
        return left == right
    return found == expected


def _contains(found: Any, expected: Any) -> bool:
    if isinstance(found, str):
        return isinstance(expected, (str, int, float)) and not isinstance(expected, bool) and str(expected) in found
    if isinstance(found, list):
        return any(same(element, expected) for element in found)
    if isinstance(found, dict):
        return isinstance(expected, str) and expected in found
    return False


def _compare(found: Any, bound: Any, greater: bool) -> bool:
    left, right = _number(found), _number(bound)
    if left is None or right is None:
        return False  # a type mismatch holds nothing
    return left > right if greater else left < right


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 1 << 20   # bytes of automaton per pattern: bounds memory as RE2 bounds time
_RE2_OPTIONS.log_errors = False


@lru_cache(maxsize=4096)
def user_regex(pattern: str) -> re2._Regexp:
    """A tenant's pattern compiled by RE2: matching is linear in the text, whatever the pattern."""
    return re2.compile(pattern, _RE2_OPTIONS)


#: RE2's own matcher, under google-re2's Python wrapper: `search` converts every match's byte offsets
#: back to str offsets in Python (~3 µs a call); whether it matches at all needs none of that (~0.6 µs)
_UNANCHORED, _NO_MATCH = re2._Anchor.UNANCHORED, re2._NULL_SPAN


@lru_cache(maxsize=4096)
def _matcher(pattern: str) -> Any:
    return user_regex(pattern)._regexp.Match


def _matches(found: Any, pattern: Any) -> bool:
    if isinstance(found, (dict, list)) or not isinstance(pattern, str):
        return False
    text = found if isinstance(found, str) else ("null" if found is None else
                                                 ("true" if found is True else "false" if found is False else str(found)))
    subject = text[:MAX_SUBJECT].encode()
    return _matcher(pattern)(_UNANCHORED, subject, 0, len(subject))[0] != _NO_MATCH


def holds(operator: str, found: list[Any], values: Sequence[Any]) -> bool:
    """Does `operator` hold over the found values? (see the module docstring)"""
    if operator in NEGATED:
        return not holds(NEGATED[operator], found, values)
    if operator == "exists":
        return bool(found)
    if operator == "equal":
        return any(same(value, expected) for value in found for expected in values)
    if operator == "contains":
        return any(_contains(value, expected) for value in found for expected in values)
    if operator in ONE_NUMBER:
        return bool(values) and any(_compare(value, values[0], operator == "greater") for value in found)
    if operator == "matches":
        return any(_matches(value, pattern) for value in found for pattern in values)
    raise ValueError(f"unknown operator {operator!r}: use one of {', '.join(OPERATORS)}")


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    operator: str
    values: tuple[Any, ...] = ()
    path: tuple[Any, ...] = ()   # the parsed key: parsed once, used on every event

    def holds_for(self, document: Any) -> bool:
        return holds(self.operator, resolve(document, self.path), self.values)


def compile_conditions(conditions: Iterable[dict]) -> tuple[Condition, ...]:
    """Stored conditions (`{type, key, operator, values}`) as checkable ones."""
    return tuple(Condition(c["key"], c["operator"], tuple(c.get("values") or ()), parse_path(c["key"]))
                 for c in conditions)


def all_hold(conditions: Iterable[Condition], document: Any) -> bool:
    return all(condition.holds_for(document) for condition in conditions)


def regex_problem(pattern: str) -> str | None:
    """Why a tenant's pattern cannot be stored (RE2 refuses it); None when it can."""
    try:
        user_regex(pattern)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        return (f"{pattern!r} is not a regular expression RE2 accepts ({detail}); "
                "backreferences and look-arounds are not supported")
    return None


def problem_with(key: str, operator: str, values: Sequence[Any]) -> str | None:
    """Why a condition cannot be used, in words a user can act on; None when it can."""
    try:
        parse_path(key)
    except PathError as exc:
        return f"key: {exc}"
    if operator not in OPERATORS:
        return f"operator: {operator!r} is not an operator; use one of {', '.join(OPERATORS)}"
    if operator not in VALUELESS and not values:
        return f"values: operator {operator!r} needs at least one value"
    if operator in ONE_NUMBER and (len(values) != 1 or _number(values[0]) is None):
        return f"values: operator {operator!r} needs exactly one number, e.g. [10]"
    if operator == "matches":
        for pattern in values:
            if not isinstance(pattern, str) or len(pattern) > MAX_REGEX:
                return f"values: a 'matches' value must be a regular expression of at most {MAX_REGEX} characters"
            problem = regex_problem(pattern)
            if problem:
                return f"values: {problem}"
    return None
