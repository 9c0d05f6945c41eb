"""What a damaged file's line advises fits the file: ``safe_load(..., damaged=...)``.

Was: every truncated file read by ``safe_load`` ended "use another checkpoint", also a samples
file that ``gan fid`` reads (which is written again, not chosen among checkpoints)."""

import struct
import zipfile

import pytest
import torch

from robustrep.tasks.common.checkpoint import load_checkpoint, safe_load
from robustrep.tasks.common.errors import CheckpointError


def _flip_bytes(path):
    """Flip bytes inside the largest member of a torch.save zip: its CRC-32 no longer fits."""
    member = max(zipfile.ZipFile(path).infolist(), key=lambda info: info.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[member.header_offset + 26:
                                                   member.header_offset + 30])
    start = member.header_offset + 30 + name_len + extra_len
    raw[start + 10:start + 40] = bytes(b ^ 0xFF for b in raw[start + 10:start + 40])
    path.write_bytes(raw)


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
