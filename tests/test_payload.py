"""Reading what a backend answered (talkinghead.payload), shared by the cloud protocols."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talkinghead.payload import parse_json, seconds, text, whole_answer


@pytest.mark.parametrize(("sent", "read"), [
    (6.9, 6.9), (7, 7.0), ("9.433", 9.433), (" 12 ", 12.0), (0, 0.0), ("0", 0.0),
    (-1, None), ("-0.5", None), ("abc", None), ("", None), (None, None), (True, None), (False, None),
    ([1], None), ({"seconds": 1}, None), ("nan", None),
])
def test_seconds_reads_numbers_and_numeric_strings_only(sent, read):
    assert seconds(sent) == read


@pytest.mark.parametrize("sent", ["inf", "-inf", "1e400", math.inf, "nan", math.nan])
def test_seconds_refuses_a_duration_that_is_not_finite(sent):
    assert seconds(sent) is None  # settling it would cost infinity, or raise in math.ceil


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                               max_size=3),
                     max_leaves=8)


@given(_JSON)
def test_seconds_of_anything_is_none_or_a_finite_duration(value):
    """Invariant: whatever a backend sends, what settles a job is None or a finite float >= 0."""
    read = seconds(value)
    assert read is None or (isinstance(read, float) and 0 <= read < math.inf)


@pytest.mark.parametrize(("body", "parsed"), [
    (b'{"a": 1}', {"a": 1}), ("[1]", [1]), (b"", None), (None, None), (b"not json", None), (b"\xff\xfe", None),
])
def test_parse_json_gives_none_for_an_empty_or_non_json_body(body, parsed):
    assert parse_json(body) == parsed


@pytest.mark.parametrize(("value", "read"), [
    (" x ", "x"), ("x", "x"), ("  ", None), ("", None), (None, None), (3, None),
])
def test_text_is_a_non_blank_string_stripped(value, read):
    assert text(value) == read


@pytest.mark.parametrize(("payload", "body", "limit", "said"), [
    ({"code": 1}, "ignored", 500, '{"code": 1}'),
    ([1, 2], "", 500, "[1, 2]"),
    ({"m": "x" * 600}, "", 20, '{"m": "xxxxxxxxxxxxx'),
    (None, "  upstream gone \n", 500, "upstream gone"),
    (None, "y" * 40, 10, "y" * 10),
    (None, "   ", 500, "no error message"),
])
def test_whole_answer_is_the_json_else_the_body_text_cut_to_the_limit(payload, body, limit, said):
    assert whole_answer(payload, body, limit=limit) == said
