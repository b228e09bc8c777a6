"""The import arrows of docs/architecture.md: market -> ledger, market -> matching, nothing back."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "ledger": {"market", "matching"},
    "matching": {"market", "ledger", "tortoise", "starlette"},
}


def imported_top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden_packages(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_top_level_names(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_only_ledger_storage_imports_the_orm() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "ledger").rglob("*.py"))
        if "storage" not in path.relative_to(ROOT).parts
        and "migrations" not in path.relative_to(ROOT).parts
        and "tortoise" in imported_top_level_names(path)
    ]
    assert offenders == []
