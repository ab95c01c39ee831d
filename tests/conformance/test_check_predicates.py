# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure parts of the REST checks: boundary builders, cursor edits, Allow, CORS, filter cases."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import httpx
import pytest
from dualstore_conformance.checks import filter_semantics as fs
from dualstore_conformance.checks import limit_bounds as lb
from dualstore_conformance.checks.cors_every import missing_cors
from dualstore_conformance.checks.http import allow_lists_exactly
from dualstore_conformance.checks.read_cursor import tampered


@pytest.mark.parametrize("length", [4096, 4098, 4099, 1024, 200])
def test_filter_of_encoded_length_is_exact_and_within_string_bounds(length: int) -> None:
    encoded = lb.filter_of_encoded_length(length, 200)
    assert len(encoded) == length
    decoded = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert all(len(value) <= 200 for value in decoded.values())


def test_no_filter_is_4k_plus_1_characters() -> None:
    assert lb.next_encoded_length(4096) == 4098
    assert lb.next_encoded_length(4098) == 4099
    with pytest.raises(ValueError):
        lb.filter_of_encoded_length(4097, 200)


def test_length_probes_count_code_points_not_units_or_bytes() -> None:
    text = lb.text_of(1024)
    assert len(text) == 1024
    assert len(text.encode("utf-16-le")) // 2 == 1024 + lb.ASTRAL_COUNT
    assert len(text.encode("utf-8")) > 1024 + lb.ASTRAL_COUNT


def _logical_depth(node: Any) -> int:
    if isinstance(node, dict):
        return max([1 + max(map(_logical_depth, v)) if k in ("$and", "$or") else 0
                    for k, v in node.items()] or [0])
    return 0


def _object_depth(node: Any) -> int:
    return 1 + max(map(_object_depth, node.values()), default=0) if isinstance(node, dict) else 0


def test_nesting_builders_nest_exactly_n_levels() -> None:
    assert [_logical_depth(lb.nested_logical(n)) for n in (1, 4, 5)] == [1, 4, 5]
    assert [_object_depth(lb.nested_metadata(n)) for n in (1, 8, 9)] == [1, 8, 9]


def test_every_cursor_edit_changes_the_decoded_bytes() -> None:
    payload = json.dumps({"t": 1767225600000, "s": 42}, separators=(",", ":")).encode()
    cursor = base64.urlsafe_b64encode(payload + b"\x01" * 16).decode().rstrip("=")
    edits = dict(tampered(cursor))
    assert len(edits) == 4  # first, middle, last character and one JSON field
    original = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    for label, edited in edits.items():
        raw = base64.urlsafe_b64decode(edited + "=" * (-len(edited) % 4))
        assert raw != original, label
    field = edits["one field of its JSON changed and re-encoded"]
    raw = base64.urlsafe_b64decode(field + "=" * (-len(field) % 4))
    assert raw.endswith(b"\x01" * 16)  # the signature bytes are kept
    assert json.JSONDecoder().raw_decode(raw.decode("latin-1"))[0] == {"t": 1767225599999,
                                                                         "s": 42}


def test_an_opaque_cursor_gets_character_edits_only() -> None:
    assert len(tampered("q83v3q83v3q83v3q")) == 3


def test_allow_may_add_head_and_options_only() -> None:
    assert allow_lists_exactly({"GET"}, {"GET"})
    assert allow_lists_exactly({"GET", "HEAD", "OPTIONS"}, {"GET"})
    assert not allow_lists_exactly({"GET", "POST"}, {"GET"})
    assert not allow_lists_exactly({"OPTIONS"}, {"GET"})


def test_missing_cors_names_what_is_absent() -> None:
    origin = "https://app.example"
    full = httpx.Headers({"Access-Control-Allow-Origin": origin,
                          "Access-Control-Expose-Headers": "Location"})
    assert missing_cors(full, origin) == []
    assert len(missing_cors(httpx.Headers({}), origin)) == 2
    assert missing_cors(httpx.Headers({"Access-Control-Allow-Origin": "*",
                                       "Access-Control-Expose-Headers": "x"}), origin)


def _evaluate(node: dict[str, Any], bits: fs.Bits) -> bool:
    """A tiny evaluator of the check's filters (equality on a, b, c; $and/$or)."""
    results = []
    for name, value in node.items():
        if name == "$and":
            results.append(all(_evaluate(sub, bits) for sub in value))
        elif name == "$or":
            results.append(any(_evaluate(sub, bits) for sub in value))
        else:
            results.append(bits["abc".index(name.split(".")[1])] == value)
    return all(results)


@pytest.mark.parametrize("case", range(len(fs.NESTED_CASES)))
def test_nested_cases_mean_what_the_check_expects_and_flattening_changes_them(case: int) -> None:
    from dualstore_mutants.filters import flatten

    term, meaning = fs.NESTED_CASES[case]
    combos = list(itertools.product((0, 1), repeat=3))
    assert [_evaluate(term, b) for b in combos] == [meaning(b) for b in combos]
    assert [_evaluate(flatten(term), b) for b in combos] != [meaning(b) for b in combos]


def test_typed_cases_tell_types_apart() -> None:
    for condition, labels in fs.TYPED_CASES:
        values = condition["$in"] if isinstance(condition, dict) else [condition]
        matched = {label for label, stored in fs.TYPED_VALUES.items()
                   if any(type(v) is type(stored) or {type(v), type(stored)} == {int, float}
                          for v in values if v == stored)}
        assert matched == labels, condition
