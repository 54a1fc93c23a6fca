"""Rules for the browser tests' own source.

The pages send a Content-Security-Policy without 'unsafe-eval'. Playwright evaluates a wait_for_function
predicate given as a bare expression with eval() inside the page as soon as it has to poll it a second time,
which that policy refuses: such a wait passes when its condition already holds and fails when it has to wait.
Written as a function ("() => ..."), the predicate is sent to the page as one and never eval'd.
"""

import re
from pathlib import Path

from django.conf import settings

BROWSER_TESTS = Path(settings.BASE_DIR) / "tests" / "browser"
CALL = re.compile(r"""wait_for_function\(\s*(?P<quote>["']{1,3})(?P<source>.*?)(?P=quote)""", re.DOTALL)


def expression_predicates(source: str) -> list[str]:
    """The predicates in `source` passed to wait_for_function as an expression, not as a function."""
    return [
        match["source"]
        for match in CALL.finditer(source)
        if not re.match(r"\s*(\(.*?\)|\w+)\s*=>|\s*(async\s+)?function\b", match["source"], re.DOTALL)
    ]


def test_every_wait_for_function_in_the_browser_tests_passes_a_function():
    found = {
        path.name: predicates
        for path in sorted(BROWSER_TESTS.rglob("*.py"))
        if (predicates := expression_predicates(path.read_text()))
    }

    assert found == {}


def test_the_rule_finds_a_bare_expression_and_lets_functions_through():
    source = """
        page.wait_for_function("window.ready")
        page.wait_for_function('() => window.ready')
        page.wait_for_function(\"\"\"() => {
            return window.ready;
        }\"\"\")
        page.wait_for_function("function () { return window.ready; }")
        page.wait_for_function("el => el.isConnected", arg=element)
        page.wait_for_function(
            "document.title === 'Queue'"
        )
    """
    assert expression_predicates(source) == ["window.ready", "document.title === 'Queue'"]
    assert list(BROWSER_TESTS.rglob("test_*.py")), "no browser tests found: the rule would pass on nothing"
