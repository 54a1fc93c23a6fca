"""Template source rules the template engine does not enforce itself."""

import re
from pathlib import Path

from django.conf import settings

ROOTS = [Path(settings.BASE_DIR) / "templates", Path(settings.BASE_DIR) / "bench" / "templates"]


def template_files() -> list[Path]:
    return sorted(path for root in ROOTS for path in root.rglob("*.html"))


def unclosed_comments(source: str) -> list[int]:
    """Lines where a {# comment does not close: Django's short comments end on their own line, and one that
    does not is printed into the page as text ({% comment %} is the one that spans lines)."""
    return [number for number, line in enumerate(source.splitlines(), 1) if re.search(r"\{#(?!.*#\})", line)]


def test_every_short_comment_in_a_template_closes_on_its_line():
    found = {
        str(path.relative_to(settings.BASE_DIR)): lines
        for path in template_files()
        if (lines := unclosed_comments(path.read_text()))
    }

    assert found == {}


def test_the_rule_finds_a_comment_left_open():
    assert unclosed_comments("{# one line #}\n<p>{# two\nlines #}</p>\n{# a #}{# b #}") == [2]
    assert template_files(), "no templates found: the rule would pass on nothing"
