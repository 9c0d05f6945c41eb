"""Every ``robustrep`` command in README.md and docs/ is accepted as written.

The commands are read from the documents themselves (fenced ``bash`` or plain blocks, and
indented command lines; not ``text`` blocks, which show refused commands on purpose), so a
renamed option, preset or value breaks this test instead of a reader's copy. Each command is
parsed by the real parser; a ``train`` command is also resolved with ``--dry-run``, which applies
its preset and checks its regularizer combination without reading data or training. Whether a
command then runs is checked by hand (commands needing data, a network or a GPU cannot run here).
"""

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from robustrep.tasks.cli import build_parser, load_plugins, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))] if (ROOT / "docs").is_dir() \
    else []
# a command starts at `robustrep`, `.venv/bin/robustrep` or torchrun's `-m robustrep.tasks.cli`
_START = re.compile(r"(?:^|\s|/)robustrep(?=\s)|-m robustrep\.tasks\.cli(?=\s)")


def doc_commands(path: Path) -> list[tuple[str, list[str]]]:
    """``(file:line, argv after the program name)`` for each command line of ``path``."""
    lines, found, fence = path.read_text().split("\n"), [], None
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
        elif (fence in ("", "bash") or (fence is None and line.startswith("    "))) \
                and not line.lstrip().startswith("#"):
            while line.rstrip().endswith("\\") and i + 1 < len(lines):  # continued lines
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            match = _START.search(line)
            if match:
                found.append((f"{path.relative_to(ROOT)}:{number}",
                              _words(line[match.end():])))
        i += 1
    return found


def _words(text: str) -> list[str]:
    """The command's words; a synopsis's optional ``[--opt VALUE]`` is kept (first alternative of
    ``a|b``), its placeholder ``N`` made a number."""
    text = re.sub(r"\[([^\]]*)\]", r"\1", text)
    words = shlex.split(text, comments=True)
    return [w.split("|")[0] if w.startswith("-") or "|" in w else ("10" if w == "N" else w)
            for w in words]


COMMANDS = [c for path in DOCS for c in doc_commands(path)]


def test_the_documents_hold_the_commands_users_copy():
    if not DOCS:
        pytest.skip("docs not beside the tests (installed test run)")
    where = {w for w, _ in COMMANDS}
    assert len(COMMANDS) > 60, len(COMMANDS)
    # the quick start, a docs/gan.md example and the toy plugin's command in docs/architecture.md
    assert {"README.md:23", "docs/gan.md:12"} <= where, sorted(where)
    assert any(w.startswith("docs/architecture.md:") and "tests/plugins/toy_regularizer.py" in a
               for w, a in COMMANDS), sorted(where)


def _user_files(folder: Path) -> dict[str, str]:
    """Stand-ins for the user's own files the documents name, which a dry run checks: a timm
    model folder (its config.json; the dry run reads no weights) and Inception weights (their
    existence is checked before the run, their contents when the first evaluation runs)."""
    export = folder / "my_timm_export"
    export.mkdir()
    (export / "config.json").write_text('{"architecture": "resnet10t", "num_classes": 10}')
    weights = folder / "pt_inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"")
    return {"./my_timm_export": str(export), weights.name: str(weights)}


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_doc_command_is_accepted(where, argv, monkeypatch, plugins_forgotten, capsys, tmp_path):
    if "..." in argv:
        pytest.skip("an elided command line")
    monkeypatch.chdir(ROOT)  # paths in the docs are relative to the checkout (tests/plugins/...)
    files = _user_files(tmp_path)
    argv = load_plugins([files.get(a, a) for a in argv])
    command = argv[1] if len(argv) > 1 and not argv[1].startswith("-") else None
    try:
        build_parser(argv[0], command).parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"{where}: robustrep {shlex.join(argv)} exits {stop.code}: "
                    f"{capsys.readouterr().err.strip()}")
    if command == "train" and "--resume" not in argv:
        with contextlib.redirect_stdout(io.StringIO()):
            code = main([*argv, "--dry-run"] if "--dry-run" not in argv else argv)
        assert code == 0, f"{where}: --dry-run exits {code}: {capsys.readouterr().err.strip()}"


def test_readme_report_sizes_are_the_settings_report_runs():
    from robustrep.tasks.report.runs import FULL, QUICK
    if not DOCS:
        pytest.skip("docs not beside the tests (installed test run)")
    text = DOCS[0].read_text()
    for flag, size in (("--quick", QUICK), ("", FULL)):
        match = re.search(rf"robustrep report {flag} +# (\d+) GAN and (\d+) classifier settings, "
                          rf"(\d+) seeds", text)
        assert match, f"README has no 'robustrep report {flag}' line with its sizes"
        assert tuple(map(int, match.groups())) == (
            len(size.gan_regs), len(size.classify_regs), len(size.seeds)), match.group(0)


@pytest.mark.parametrize("program", ["gan", "classify"])
def test_troubleshooting_lists_the_options_a_resume_may_change(program):
    """docs/troubleshooting.md's list is the programs' RESUMABLE (it had drifted: --min-lr and
    --keep-ckpts missing)."""
    import importlib
    if not DOCS:
        pytest.skip("docs not beside the tests (installed test run)")
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    item = re.search(rf"^- {program}: (.*?)[;.]$", text, re.M | re.S)
    assert item, f"docs/troubleshooting.md lists no options for {program}"
    listed = {f[2:].replace("-", "_") for f in re.findall(r"`(--[a-z0-9-]+)`", item.group(1))}
    saved = importlib.import_module(f"robustrep.tasks.{program}.config").RESUMABLE
    assert listed == set(saved), sorted(set(saved) ^ listed)
