"""``talkinghead.checks``: the option checks, as invariants over generated values."""

from __future__ import annotations

import math
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talkinghead import checks
from talkinghead.errors import InputError

WORD = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12)
SECRET = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=6, max_size=20).map(lambda s: "S" + s)


@settings(max_examples=200, deadline=None)
@given(user=SECRET, password=SECRET, host=WORD, path=st.lists(WORD, max_size=3), query=SECRET, fragment=SECRET)
def test_safe_url_keeps_no_credential_signature_or_fragment(user, password, host, path, query, fragment):
    url = f"https://{user}:{password}@{host}.example/{'/'.join(path)}?X-Amz-Signature={query}#{fragment}"
    safe = checks.safe_url(url)
    assert safe == f"https://{host}.example/{'/'.join(path)}"
    assert not any(secret in safe for secret in (user, password, query, fragment))


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.floats(), st.integers(-10**6, 10**6), st.text(max_size=8)))
def test_a_number_passes_only_when_finite_and_in_range(value):
    try:
        out = checks.number("n", value, minimum=0.0, inclusive=False)
    except InputError as exc:
        assert exc.field == "n" and str(exc).startswith("n: ")
        return
    assert out is not None and math.isfinite(out) and out > 0


@pytest.mark.parametrize("url", ["http://h.example/x", "https://h.example:8443/hook?x=1"])
def test_http_urls_pass(url):
    assert checks.http_url("webhook_url", url) == url


@pytest.mark.parametrize("url", ["h.example/x", "file:///etc/passwd", "https://", "http://h:99999/", "/x",
                                 "https://h.example/a b", "mailto:a@b.example"])
def test_other_urls_are_refused(url):
    with pytest.raises(InputError) as info:
        checks.http_url("webhook_url", url)
    assert info.value.field == "webhook_url"


def test_output_path_accepts_a_missing_folder_it_can_make(tmp_path):
    assert checks.output_path("output", tmp_path / "a" / "b" / "o.mp4") == tmp_path / "a" / "b" / "o.mp4"
    assert not (tmp_path / "a").exists()  # checked, not created


def test_control_characters_are_refused_but_tabs_and_newlines_are_text():
    checks.plain_text("prompt", "line one\n\tline two\r\n")
    for bad in ("\x00", "\x1b[0m", "\x7f", "\x85"):
        with pytest.raises(InputError, match="control character"):
            checks.plain_text("prompt", f"a{bad}b")
