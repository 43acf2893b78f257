"""The ruleset condition language: every operator, missing keys, arrays, type mismatches."""
from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from schemas.ruleset import MAX_PATTERNS_PER_RULESET, RulesetSpec
from tables.conditions import ANY, PathError, all_hold, compile_conditions, holds, parse_path, problem_with, resolve

EVENT = {
    "status": "firing",
    "count": 5,
    "ratio": "0.75",
    "ok": True,
    "nothing": None,
    "products": [{"name": "widget", "count": 3, "tags": ["new", "sale"]}, {"name": "gadget", "count": 12}],
    "alerts": [{"labels": {"severity": "critical", "app.kubernetes.io/name": "api"}},
               {"labels": {"severity": "warning"}}],
    "message": "Disk /var is 93% full",
}


def check(key: str, operator: str, *values: object) -> bool:
    return compile_conditions([{"type": "json-check", "key": key, "operator": operator,
                                "values": list(values)}])[0].holds_for(EVENT)


def test_paths() -> None:
    assert parse_path("products[0].count") == ("products", 0, "count")
    assert parse_path("alerts[0].labels.severity") == ("alerts", 0, "labels", "severity")
    assert parse_path('alerts[0].labels["app.kubernetes.io/name"]') == ("alerts", 0, "labels", "app.kubernetes.io/name")
    assert parse_path("alerts[*].labels.severity") == ("alerts", ANY, "labels", "severity")
    assert parse_path("products[-1].name") == ("products", -1, "name")
    for bad in ("alerts[0", "a..b", "", "a[x]"):
        with pytest.raises(PathError):
            parse_path(bad)


def test_resolve_finds_nothing_one_or_many() -> None:
    assert resolve(EVENT, parse_path("products[1].count")) == [12]
    assert resolve(EVENT, parse_path("products[*].count")) == [3, 12]
    assert resolve(EVENT, parse_path("products[2].count")) == []       # index out of range
    assert resolve(EVENT, parse_path("status.deep")) == []              # a step meets a string
    assert resolve(EVENT, parse_path("products.count")) == []           # a name meets a list
    assert resolve(EVENT, parse_path("missing")) == []
    assert resolve(EVENT, parse_path("nothing")) == [None]              # null is found


def test_equal_and_not_equal() -> None:
    assert check("status", "equal", "firing") and check("status", "equal", "resolved", "firing")
    assert not check("status", "equal", "Firing")                       # case matters
    assert check("alerts[0].labels.severity", "equal", "critical")
    assert check('alerts[0].labels["app.kubernetes.io/name"]', "equal", "api")
    assert check("products[0].count", "equal", 3) and check("products[0].count", "equal", "3")
    assert check("count", "equal", 5.0) and check("ratio", "equal", 0.75)
    assert check("ok", "equal", True) and check("ok", "equal", "true") and not check("ok", "equal", 1)
    assert check("nothing", "equal", None) and check("nothing", "equal", "null")
    assert check("status", "not-equal", "resolved") and not check("status", "not-equal", "firing")
    assert check("alerts[*].labels.severity", "equal", "warning")      # any element
    assert not check("alerts[*].labels.severity", "not-equal", "warning")  # negation of "any equals"


def test_missing_keys_fail_positive_operators_and_satisfy_negative_ones() -> None:
    for operator, value in (("equal", "x"), ("contains", "x"), ("greater", 1), ("less", 1), ("matches", ".*")):
        assert not check("missing.key", operator, value), operator
    assert check("missing.key", "not-equal", "x") and check("missing.key", "not-contains", "x")
    assert check("missing.key", "not-exists") and not check("missing.key", "exists")
    assert check("nothing", "exists") and check("products[1]", "exists") and check("products[5]", "not-exists")


def test_contains_on_strings_arrays_and_objects() -> None:
    assert check("message", "contains", "93%") and not check("message", "contains", "94%")
    assert check("products[0].tags", "contains", "sale") and not check("products[0].tags", "contains", "sal")
    assert check("alerts[0].labels", "contains", "severity")
    assert check("message", "not-contains", "memory")
    assert not check("count", "contains", "5")                          # a number has no substrings


def test_greater_and_less_are_numeric_and_type_mismatches_hold_nothing() -> None:
    assert check("products[1].count", "greater", 10) and not check("products[1].count", "greater", 12)
    assert check("ratio", "less", 1) and check("ratio", "greater", "0.5")  # numeric strings count
    assert check("products[*].count", "greater", 10)                    # some element
    assert not check("status", "greater", 1) and not check("status", "less", 1)  # text is not a number
    assert not check("ok", "greater", 0)                                 # nor is a boolean
    assert not check("products", "greater", 0)                           # nor an array


def test_matches_is_a_regex_search_on_scalars() -> None:
    assert check("message", "matches", r"\d+% full") and check("status", "matches", "^fir")
    assert not check("status", "matches", "^ring")
    assert check("count", "matches", "^5$") and check("ok", "matches", "^true$")
    assert not check("products", "matches", ".*")                       # not on arrays or objects


def test_matches_sees_text_as_text_and_stays_linear() -> None:
    from tables.conditions import holds
    assert holds("matches", ["zürich-01"], ["^z.rich-\\d+$"])           # one character, not one byte
    assert holds("matches", ["Größe ü"], ["ü$"]) and not holds("matches", ["Größe u"], ["ü"])
    started = time.perf_counter()
    assert not holds("matches", ["a" * 4000 + "!"], ["^(a+)+$"])        # backtracking would never finish
    assert time.perf_counter() - started < 0.05


def test_all_conditions_must_hold_and_none_match_everything() -> None:
    both = compile_conditions([
        {"type": "json-check", "key": "status", "operator": "equal", "values": ["firing"]},
        {"type": "json-check", "key": "products[1].count", "operator": "greater", "values": [10]},
    ])
    assert all_hold(both, EVENT)
    assert not all_hold(both, {**EVENT, "status": "resolved"})
    assert all_hold((), EVENT) and all_hold((), "not even an object")


def test_documents_that_are_not_objects() -> None:
    assert holds("not-exists", resolve([1, 2], parse_path("a")), [])
    assert resolve([{"a": 1}], parse_path("[0].a")) == [1]


def test_problems_are_explained() -> None:
    assert problem_with("alerts[0].labels.severity", "equal", ["critical"]) is None
    assert problem_with("status", "exists", []) is None
    assert problem_with("alerts[0", "equal", ["x"]).startswith("key: ")
    assert problem_with("status", "equal", []).startswith("values: ")
    assert problem_with("count", "greater", ["ten"]).startswith("values: ")
    assert problem_with("count", "greater", [1, 2]).startswith("values: ")
    assert problem_with("status", "matches", ["(unclosed"]).startswith("values: ")
    assert problem_with("status", "matches", ["a" * 300]).startswith("values: ")


CATASTROPHIC = "^(a+)+$"   # backtracks 2^n steps in Python's re on "a…a!"


def test_a_catastrophic_pattern_costs_milliseconds() -> None:
    """RE2 runs a tenant's pattern in time linear in the text: no pattern can stall a worker."""
    for subject in ("a" * 29 + "!", "a" * 4000 + "!"):
        started = time.perf_counter()
        assert not holds("matches", [subject], [CATASTROPHIC])
        assert time.perf_counter() - started < 0.05   # Python's re needs ~20 s for the first one
    assert holds("matches", ["aaaa"], [CATASTROPHIC])


def test_patterns_that_need_backtracking_are_refused_when_saved() -> None:
    for pattern in (r"(a)\1", "(?=a)b", "(?<!x)y"):
        assert "RE2" in problem_with("status", "matches", [pattern])
    assert problem_with("status", "matches", [CATASTROPHIC]) is None


def test_a_ruleset_has_bounded_patterns_and_size() -> None:
    def spec(*conditions: dict) -> dict:
        return {"rule_type": "webhook", "name": "n", "conditions": list(conditions)}

    many = {"key": "s", "operator": "matches", "values": ["x"] * (MAX_PATTERNS_PER_RULESET + 1)}
    with pytest.raises(ValidationError, match="regular expressions per ruleset"):
        RulesetSpec.model_validate(spec(many))
    big = [{"key": "s", "operator": "equal", "values": ["v" * 1000] * 20}]
    with pytest.raises(ValidationError, match="bytes of conditions per ruleset"):
        RulesetSpec.model_validate(spec(*big))
    RulesetSpec.model_validate(spec({"key": "s", "operator": "matches", "values": ["x"] * MAX_PATTERNS_PER_RULESET}))
