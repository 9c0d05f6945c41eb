"""The layers of DESIGN.md, read from the source: the library imports nothing from the programs,
``tasks/common`` imports no program, and no program imports another (they meet only through run
folders and the command line). A static read of every ``import``, also those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = sorted(p.name for p in (ROOT / "tasks").iterdir()
                  if (p / "__init__.py").is_file() and p.name != "common")


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names (a relative import is resolved from the
    package ``path`` is in, as ``robustrep.tasks.<program>``)."""
    package = ["robustrep", *path.relative_to(ROOT).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            names.add(".".join([*base, *(node.module or "").split(".")]).strip("."))
    return names


def _program_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["robustrep", "tasks"] and len(parts) > 2 else None


def test_the_programs_are_found():
    assert {"gan", "classify", "ood", "report", "data"} <= set(PROGRAMS)


def test_the_library_imports_no_program():
    found = {f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "robustrep").rglob("*.py")
             for m in imported(p) if m.startswith("robustrep.tasks")}
    assert not found


def test_common_imports_no_program():
    found = {f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "tasks" / "common").rglob("*.py")
             for m in imported(p) if _program_of(m) in PROGRAMS}
    assert not found


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_program_imports_no_other(program):
    found = {f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "tasks" / program).rglob("*.py")
             for m in imported(p) if _program_of(m) not in (None, "common", program)}
    assert not found
