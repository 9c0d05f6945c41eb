"""The scripts' option checks: a wrong value is one ``error:`` line and exit code 2, found before
any work starts (no traceback); test_oldest.sh deletes only a folder it made itself."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def exits_2(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in err and "Traceback" not in err
    return err


def test_test_oldest_help_and_refusals(tmp_path):
    script = str(SCRIPTS / "test_oldest.sh")
    help_ = subprocess.run(["bash", script, "--help"], capture_output=True, text=True)
    assert help_.returncode == 0 and help_.stdout.startswith("usage:")
    keep = tmp_path / "not-a-venv"
    keep.mkdir()
    (keep / "precious").write_text("x")
    for arg in (str(keep), "-x", str(tmp_path)):
        proc = subprocess.run(["bash", script, arg], capture_output=True, text=True)
        assert proc.returncode == 2, (arg, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (keep / "precious").is_file()
    made = tmp_path / "made"  # one the script made: a wrong PYTHON is refused before it goes
    made.mkdir()
    (made / ".made-by-test_oldest").write_text("")
    proc = subprocess.run(["bash", script, str(made)], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": "no-such-python3"})
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "test_oldest.sh: error: PYTHON=no-such-python3 is not a command; give an interpreter "
        "such as python3.10")
    assert (made / ".made-by-test_oldest").is_file()


BAD = [
    ("bench_cli", ["--repeats", "0"], "--repeats"),
    ("bench_stylegan2", ["--res", "30"], "power of 2"),
    ("bench_stylegan2", ["--batch", "0"], "--batch"),
    ("bench_stylegan2", ["--rounds", "0"], "--rounds"),
    ("bench_stylegan2_step", ["--reg", "foo"], "unknown regularizer 'foo'"),
    ("bench_stylegan2_step", ["--iters", "0"], "--iters"),
    ("bench_stylegan2_step", ["--res", "30"], "--res"),
    ("classify_evidence", ["--regs", "foo"], "'foo'"),
    ("classify_evidence", ["--seeds", "-1"], "--seeds"),
    ("classify_evidence", ["--steps", "0"], "--steps"),
    ("classify_evidence", ["--attacks", "bogus"], "'bogus'"),
    ("classify_evidence", ["--n-attack", "0"], "--n-attack"),
    ("gan_evidence", ["--benchmarks", "foo"], "'foo'"),
    ("gan_evidence", ["--seeds", "0"], "--seeds"),
    ("gan_evidence", ["--grid-share", "2"], "--grid-share"),
    ("mutation", ["--jobs", "0"], "--jobs"),
    ("mutation", ["--timeout", "-5"], "--timeout"),
]


@pytest.mark.parametrize("name, argv, says", BAD, ids=[f"{n} {' '.join(a)}" for n, a, _ in BAD])
def test_bad_option_is_one_line_exit_2(name, argv, says, tmp_path, capsys):
    argv = argv + (["--out", str(tmp_path / "out")] if "evidence" in name else [])
    assert says in exits_2(load(name).main, argv, capsys)


@pytest.mark.parametrize("argv", [["--batch", "1"], ["--steps", "-1"], ["--rounds", "0"],
                                  ["--views", "0"], ["--device", "nope"]])
def test_bench_regularizers_bad_option(argv, monkeypatch, capsys):
    main = load("bench_regularizers").main  # it reads sys.argv
    monkeypatch.setattr(sys, "argv", ["bench_regularizers.py", *argv])
    assert argv[0] in exits_2(lambda _: main(), None, capsys)


@pytest.mark.parametrize("name", ["ada_reference_check", "compare_stylegan2_reference",
                                  "gpu_compare_step"])
def test_ref_must_be_a_checkout(name, tmp_path, capsys):
    for ref in (tmp_path / "nonexistent", tmp_path):
        err = exits_2(load(name).main, ["--ref", str(ref)], capsys)
        assert "no stylegan2-ada-pytorch checkout there" in err


def test_mutation_says_when_mutmut_is_missing(tmp_path, monkeypatch, capsys):
    script = load("mutation")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no mutmut beside it
    assert "mutmut is not installed" in exits_2(script.main, ["losses"], capsys)


def test_bench_stylegan2_header_names_the_machine(tmp_path, capsys):
    with torch.random.fork_rng():
        load("bench_stylegan2").main(["--res", "8", "--batch", "2", "--channel-base", "64",
                                      "--channel-max", "8", "--rounds", "1",
                                      "--out", str(tmp_path / "b.json")])
    header = capsys.readouterr().out.splitlines()[0]
    assert f"threads, torch {torch.__version__}" in header and not header.endswith(", ")


def test_one_seed_has_no_spread(tmp_path):
    classify = load("classify_evidence")
    table = classify.aggregate({"none": [{"clean_acc": 0.9}]})
    assert table["none"]["clean_acc"][1] is None
    args = classify.parse_args(["--out", str(tmp_path)])
    assert "0.900 ± n/a" in classify.markdown(table, args)
    json.dumps(table, allow_nan=False)  # strict JSON: no bare NaN
    gan = load("gan_evidence")
    mean, std = gan._mean_std([2.0])
    assert std is None and gan._cell(mean, std, 1) == "2.0 ± n/a"


@pytest.mark.parametrize("argv", [["--eps", "8"], ["--eps", "abc"], ["--eps", "1/0"],
                                  ["--n", "0"], ["--threads", "-1"]])
def test_bench_autoattack_refuses_a_bad_value_in_one_line(argv, capsys):
    err = exits_2(load("bench_autoattack").main, argv, capsys)
    assert argv[0] in err
