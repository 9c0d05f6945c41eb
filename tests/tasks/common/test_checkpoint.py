import random
import re
import struct
import zipfile
from pathlib import Path

import numpy as np

import pytest
import torch

from robustrep.tasks.common.checkpoint import (latest_checkpoint, load_checkpoint,
                                               nonfinite_tensors, rng_state, safe_load,
                                               save_checkpoint, set_rng_state)
from robustrep.tasks.common.errors import CheckpointError, RunFolderError, TrainingDiverged
from robustrep.tasks.common.rundir import RunDir


class Payload:
    """Pickles as a call that creates ``marker``: what a planted ``__reduce__`` payload does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path(self.marker).touch, ())


def write_payload_checkpoint(path, marker):
    torch.save({"step": 1, "G": {"w": torch.zeros(2)}, "x": Payload(marker)}, path)
    return path


def test_save_keeps_latest_and_prunes(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint({"step": step, "w": torch.full((2,), float(step))}, tmp_path, step, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == ["step_00000003.pt",
                                                                    "step_00000004.pt"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 4
    assert load_checkpoint(tmp_path)["w"].tolist() == [4.0, 4.0]
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_checkpoint_names_path(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        load_checkpoint(tmp_path / "latest.pt")


def test_rng_state_round_trip_repeats_draws(tmp_path):
    """Through a file read with weights_only=True: the state must be tensors and plain values."""
    gen = torch.Generator().manual_seed(3)
    random.gauss(0, 1), np.random.standard_normal()  # cached Gaussians are part of the state
    torch.save(rng_state({"g": gen}), tmp_path / "rng.pt")
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    first = (random.random(), np.random.rand(), torch.rand(1).item(),
             torch.rand(1, generator=gen).item())
    set_rng_state(state, {"g": gen})
    second = (random.random(), np.random.rand(), torch.rand(1).item(),
              torch.rand(1, generator=gen).item())
    assert first == second


def test_run_dir_log_and_truncate(tmp_path):
    run = RunDir(tmp_path / "run").create()
    run.write_config({"a": 1, "p": tmp_path})
    for step in (10, 20, 30):
        run.log(step, loss=torch.tensor(float(step)), bad=float("nan"))
    run.truncate_metrics(20)
    records = run.read_metrics()
    assert [r["step"] for r in records] == [10, 20]
    assert records[0]["loss"] == 10.0 and records[0]["bad"] == "nan"
    assert run.read_config()["a"] == 1


def test_read_config_of_non_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a robustrep run folder"):
        RunDir(tmp_path).read_config()


def test_reduce_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write_payload_checkpoint(tmp_path / "latest.pt", marker)
    with pytest.raises(CheckpointError, match=f"{path}.*refuses") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    # The payload is real: the opt-in full unpickler runs it.
    load_checkpoint(path, allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "not_a_dict"])
def test_unreadable_checkpoints_are_one_line_errors(tmp_path, damage):
    path = tmp_path / "latest.pt"
    save_checkpoint({"step": 3, "w": torch.randn(64, 64)}, tmp_path, 3)
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a checkpoint" * 10)
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match=str(path)) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_flipped_bytes_inside_a_tensor_are_refused_not_loaded(tmp_path):
    """torch.load reads a zip member without checking its CRC-32: bytes flipped on disk would
    come back as other weights. The damaged member is named instead."""
    path = tmp_path / "latest.pt"
    save_checkpoint({"step": 3, "w": torch.randn(64, 64)}, tmp_path, 3)
    assert load_checkpoint(path)["step"] == 3
    member = _flip_bytes(path, at=100)
    with pytest.raises(CheckpointError, match=f"{path} is damaged: its part "
                                              f"{member.filename} fails its CRC-32") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_nonfinite_state_is_never_written_and_good_checkpoints_stay(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint({"step": step, "model": {"w": torch.ones(3)}}, tmp_path, step, keep=2)
    bad = {"step": 4, "model": {"w": torch.tensor([1.0, float("nan"), 1.0])},
           "opt": {"state": {0: {"m": torch.tensor([float("inf")])}}}}
    with pytest.raises(TrainingDiverged, match="step-4 .*model/w, opt/state/0/m"):
        save_checkpoint(bad, tmp_path, 4, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == ["step_00000002.pt",
                                                                    "step_00000003.pt"]
    assert load_checkpoint(tmp_path)["step"] == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_nonfinite_tensors_ignores_integer_and_rng_tensors():
    state = {"rng": torch.get_rng_state(), "n": torch.tensor([2**62]), "x": [torch.zeros(2)],
             "f": 1.5, "h": torch.tensor([float("-inf")], dtype=torch.float16)}
    assert nonfinite_tensors(state) == ["h"]


def test_full_disk_is_a_one_line_error_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    import errno

    import robustrep.tasks.common.checkpoint as ckpt
    save_checkpoint({"step": 1, "w": torch.ones(2)}, tmp_path, 1)

    def full(obj, handle):
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full)
    with pytest.raises(RunFolderError, match=r"cannot write .*step_00000002.pt: No space left"):
        save_checkpoint({"step": 2, "w": torch.ones(2)}, tmp_path, 2)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)["step"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_real_torch_save_on_a_full_disk_is_one_line_and_keeps_the_old_checkpoint(tmp_path):
    """torch.save itself meets the full disk (here a file-size limit: EFBIG, which Python gets
    instead of SIGXFSZ) and raises its zip writer's RuntimeError with the OSError only as its
    context: that was a traceback, not the mocked OSError of the test above."""
    import resource
    save_checkpoint({"step": 1, "w": torch.ones(4)}, tmp_path, 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))  # 1 MiB per file written
    try:
        # a new file: there is no "previous file" that stays unchanged
        with pytest.raises(RunFolderError, match=r"cannot write .*step_00000002.pt: File too "
                                                 r"large; raise the file size limit \(ulimit -f, "
                                                 r"or the file system's largest file\) or choose "
                                                 r"another output folder \(nothing was "
                                                 r"written\)$"):
            save_checkpoint({"step": 2, "w": torch.ones(1 << 19)}, tmp_path, 2)  # 2 MiB
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert load_checkpoint(tmp_path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt", "step_00000001.pt"]


def test_a_checkpoint_that_does_not_fit_names_the_keys(tmp_path):
    """load_state_dict's first line only says where ("Error(s) in loading state_dict for G:");
    the keys that differ follow on the next lines, and the message keeps them."""
    from robustrep.tasks.common.checkpoint import load_for_resume, save_checkpoint
    path = save_checkpoint({"step": 1, "w": torch.zeros(2)}, tmp_path, 1)

    def load(state):
        raise RuntimeError('Error(s) in loading state_dict for G:\n\tMissing key(s) in '
                           'state_dict: "net.1.weight".')
    with pytest.raises(CheckpointError) as err:
        load_for_resume(path, 4, load)
    assert str(err.value) == (f"checkpoint {path} does not fit this run's config (RuntimeError: "
                              'Error(s) in loading state_dict for G: Missing key(s) in '
                              'state_dict: "net.1.weight".)')


def test_a_long_torch_error_is_cut_at_its_first_sentence(tmp_path):
    # Was: torch's 470-character zip error cut at 160 characters, mid-word ("there is a high")
    path = tmp_path / "latest.pt"
    path.write_bytes(b"PK\x03\x04garbage" * 3)  # a zip's start, no central directory
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    # torch 2.5's message ends without the full stop (and without the long advice after it)
    assert re.search(r"\(RuntimeError: PytorchStreamReader failed reading zip archive: failed "
                     r"finding central directory\.?\); it may be truncated or corrupt", message)
    from robustrep.tasks.common.checkpoint import _first_sentence
    cut = _first_sentence(ValueError("word " * 60))
    assert cut.endswith("word ...") and len(cut) <= 164


def test_mismatch_text_counts_and_names_whole_keys():
    from robustrep.tasks.common.checkpoint import mismatch_text
    model = {f"blocks.{i}.conv.weight": (8, 8, 3, 3) for i in range(40)}
    model["head.weight"] = (10, 8)
    file = {k: v for k, v in model.items() if k != "blocks.7.conv.weight"}
    file.update({"extra.a": (1,), "extra.b": (2,), "head.weight": (5, 8)})
    assert mismatch_text(model, file) == (
        "1 parameter(s) missing (e.g. blocks.7.conv.weight); 2 unexpected (e.g. extra.a, "
        "extra.b); wrong shapes (file vs model): head.weight (5, 8) vs (10, 8)")
    assert mismatch_text(model, dict(model)) == ""
    del file["extra.a"], file["extra.b"]
    loose = mismatch_text(model, {**file, "blocks.7.conv.weight": (8, 8, 3, 3)},
                          lambda key, want, have: key == "head.weight" or want == have)
    assert loose == ""


def _run_with_steps(tmp_path, steps=(1, 2, 3)):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    for step in steps:
        save_checkpoint({"step": step, "w": torch.full((2,), float(step))}, run / "checkpoints",
                        step)
    return run


def _cut(path):
    path.write_bytes(path.read_bytes()[:200])  # a copy cut short, a disk error


def test_a_damaged_last_step_file_is_not_the_one_to_copy(tmp_path, capsys):
    """latest.pt missing or damaged: the line named the last step file even when it was damaged
    too, and copying it over latest.pt as told gave the same refusal again. Now it names the
    last step file that reads whole, and says when none does."""
    from robustrep.tasks.common.checkpoint import load_for_resume
    from robustrep.tasks.common.runopen import check_run_folder
    run = _run_with_steps(tmp_path)
    ckpts = run / "checkpoints"
    _cut(ckpts / "step_00000003.pt")
    _cut(ckpts / "latest.pt")
    with pytest.raises(CheckpointError) as info:
        load_for_resume(ckpts / "latest.pt", 9, lambda state: None)
    assert str(info.value).endswith(
        f"; {ckpts / 'step_00000002.pt'} is there, the last step file that reads whole "
        f"(step_00000003.pt after it is damaged): copy it over {ckpts / 'latest.pt'} to resume "
        f"from it")
    (ckpts / "latest.pt").unlink()
    with pytest.raises(RunFolderError, match=re.escape(
            f"{run} holds checkpoints but no latest.pt; {ckpts / 'step_00000002.pt'} is there, "
            f"the last step file that reads whole (step_00000003.pt after it is damaged): "
            f"continue from it with --resume {run}, or choose another --out")):
        check_run_folder(run, resume=False)
    # was: "copy it to latest.pt" (the resume does it, the damaged step_3 passed over)
    assert check_run_folder(run, resume=True) == ckpts / "latest.pt"
    assert capsys.readouterr().err == (
        f"note: {run} had no latest.pt (stopped while it was written); resuming from "
        f"step_00000002.pt, the last step file that reads whole (step_00000003.pt after it is "
        f"damaged), copied to it\n")
    assert load_for_resume(ckpts / "latest.pt", 9, lambda state: None)["step"] == 2
    for path in ckpts.glob("*.pt"):
        _cut(path)
    with pytest.raises(CheckpointError, match=r"; the step files beside it are damaged too "
                                              r"\(step_00000003.pt the last\)$"):
        load_for_resume(ckpts / "latest.pt", 9, lambda state: None)
    (ckpts / "latest.pt").unlink()
    with pytest.raises(RunFolderError, match=re.escape(
            f"{run} holds checkpoints but no latest.pt; its step files are damaged "
            f"(step_00000003.pt the last), so it cannot go on: start it again after removing "
            f"{run}, or choose another --out")):
        check_run_folder(run, resume=False)


def test_a_resume_moves_the_step_files_past_its_checkpoint_aside(tmp_path, capsys):
    """A kill between step 3's file and latest.pt (or an older checkpoint resumed on purpose)
    left step_3.pt past the step resumed: a damaged latest.pt's line then told the user to go
    on from it, another trajectory's step, and a stop line gave its step as latest.pt's."""
    from robustrep.tasks.common.checkpoint import load_for_resume
    from robustrep.tasks.common.runopen import resumed
    run = _run_with_steps(tmp_path)
    ckpts = run / "checkpoints"
    (ckpts / "latest.pt").write_bytes((ckpts / "step_00000002.pt").read_bytes())
    third = (ckpts / "step_00000003.pt").read_bytes()
    resumed(RunDir(run), {"steps": 9}, 2)
    aside = ckpts / "abandoned_step_00000002"
    assert sorted(p.name for p in ckpts.iterdir()) == [aside.name, "latest.pt",
                                                       "step_00000001.pt", "step_00000002.pt"]
    assert (aside / "step_00000003.pt").read_bytes() == third  # moved aside, not deleted
    assert capsys.readouterr().err.endswith(
        f"note: moved step_00000003.pt into {aside}: past step 2, which the run resumes from "
        f"and trains on again\n")
    _cut(ckpts / "latest.pt")
    with pytest.raises(CheckpointError, match=re.escape(
            f"; {ckpts / 'step_00000002.pt'} is there, the last step written: ")):
        load_for_resume(ckpts / "latest.pt", 9, lambda state: None)

# What a damaged file's line advises fits the file (``safe_load(..., damaged=...)``). Was: every
# truncated file read by safe_load ended "use another checkpoint", also a samples file that
# gan fid reads (which is written again, not chosen among checkpoints).

def _flip_bytes(path, at=10):
    """Flip 30-40 bytes ``at`` bytes into the largest member of a torch.save zip: its CRC-32 no
    longer fits. Returns the member."""
    member = max(zipfile.ZipFile(path).infolist(), key=lambda info: info.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[member.header_offset + 26:
                                                   member.header_offset + 30])
    start = member.header_offset + 30 + name_len + extra_len
    raw[start + at:start + at + 30] = bytes(b ^ 0xFF for b in raw[start + at:start + at + 30])
    path.write_bytes(raw)
    return member


def _damaged_files(tmp_path):
    """A file of each kind of damage safe_load names: truncated (torch's error), bytes
    flipped (the CRC-32 check) and no torch file at all (the unpickler's)."""
    whole = tmp_path / "whole.pt"
    torch.save(torch.rand(64, 64), whole)
    truncated, flipped, garbage = (tmp_path / f"{n}.pt" for n in ("cut", "flipped", "garbage"))
    truncated.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    flipped.write_bytes(whole.read_bytes())
    _flip_bytes(flipped)
    garbage.write_bytes(b"not a torch file at all")
    return {"truncated or corrupt: ": truncated, "a disk or copy error); ": flipped,
            "a pickle of another kind: ": garbage}


def test_damaged_ends_the_line_of_every_kind_of_damage(tmp_path):
    advice = "write it again (robustrep gan sample RUN --pt FILE.pt)"
    for before, path in _damaged_files(tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            safe_load(path, "samples file", damaged=advice)
        line = str(info.value)
        assert line.startswith(f"samples file {path} ") and line.endswith(before + advice), line
        assert "checkpoint" not in line and "\n" not in line


def test_a_checkpoint_keeps_its_advice_and_other_files_get_another_file(tmp_path):
    for before, path in _damaged_files(tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        assert str(info.value).endswith(before + "use another checkpoint"), str(info.value)
        with pytest.raises(CheckpointError) as info:
            safe_load(path, "weights file")  # was "use another checkpoint" when truncated
        assert str(info.value).endswith(before + "use another file"), str(info.value)
