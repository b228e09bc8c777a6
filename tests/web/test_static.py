"""Checks on the static files that need no browser."""

from __future__ import annotations

import json
import re

from market.assessment import ITEMS
from matching import ReasonCode
from tests.web.conftest import ROOT

STATIC = ROOT / "static"


def _keys(language: str) -> set[str]:
    text = (STATIC / "i18n.js").read_text(encoding="utf-8")
    start = text.index(f"  {language}: {{")
    end = text.index("\n  },", start)
    return set(re.findall(r'^\s+"([a-z0-9_.]+)":', text[start:end], flags=re.MULTILINE))


def test_both_languages_define_the_same_strings() -> None:
    zh, en = _keys("zh"), _keys("en")
    assert zh, "no strings found"
    assert zh - en == set(), f"missing in English: {sorted(zh - en)}"
    assert en - zh == set(), f"missing in Chinese: {sorted(en - zh)}"


def test_every_string_key_used_in_code_exists() -> None:
    defined = _keys("zh")
    used: set[str] = set()
    for path in STATIC.rglob("*.js"):
        if "vendor" in path.parts:
            continue
        used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', path.read_text(encoding="utf-8")))
    assert used - defined == set(), sorted(used - defined)


def test_every_reason_the_matcher_gives_has_words_for_the_elder() -> None:
    # The booking page and the queue show `match.<code>` for the booking's match note.
    defined = _keys("zh")
    assert {f"match.{code.value}" for code in ReasonCode} <= defined


def test_assessment_items_match_the_server() -> None:
    text = (STATIC / "assessment-items.js").read_text(encoding="utf-8")
    rows = [json.loads(m) for m in re.findall(r'^\s+(\["[a-z_]+", "[a-z_]+", \d+\])', text, re.M)]
    assert rows == [[i.code, i.dimension.value, i.max_score] for i in ITEMS]


def test_axe_is_vendored_with_its_licence_and_never_loaded_by_pages() -> None:
    assert (STATIC / "vendor" / "axe.min.js").stat().st_size > 100_000
    assert "Mozilla Public License" in (STATIC / "vendor" / "axe-core.LICENSE").read_text()
    for path in [*STATIC.glob("*.html"), *STATIC.rglob("*.js")]:
        if "vendor" not in path.parts:
            assert "axe" not in path.read_text(encoding="utf-8").lower(), path


def test_pages_load_only_local_files() -> None:
    # No CDN: the client must work on a centre's intranet with no internet access.
    for path in [*STATIC.glob("*.html"), *STATIC.rglob("*.js"), *STATIC.glob("*.css")]:
        if "vendor" in path.parts:
            continue
        # The SVG namespace is a name, not a download.
        text = path.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://", text), path
