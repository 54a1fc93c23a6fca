"""Dependencies point one way: accounts <- playbooks <- opportunities."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each app and the apps it must never import.
FORBIDDEN = {
    "accounts": {"playbooks", "opportunities"},
    "playbooks": {"opportunities"},
}


def imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def modules_of(app: str) -> list[Path]:
    return sorted(path for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts)


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_it_keeps_each_app_from_importing_the_apps_downstream_of_it(app):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_apps(path) & FORBIDDEN[app])
        for path in modules_of(app)
        if imported_apps(path) & FORBIDDEN[app]
    }
    assert offenders == {}


def test_it_finds_an_import_of_a_downstream_app(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "import json\nfrom opportunities.models import Opportunity\n\ndef f():\n    import playbooks.rules\n"
    )
    assert imported_apps(module) >= {"opportunities", "playbooks"}
