"""A second bench into the same folder: an earlier bench.json without per-run records."""

from robustrep.tasks.ood.bench_records import keep_earlier


def test_an_earlier_bench_without_records_is_replaced_with_a_note(tmp_path):
    old = {"regs": ["none", "mixup"], "summary": []}  # written before the records were kept
    kept, notes = keep_earlier(old, {"seed": 0}, ["none"], tmp_path / "bench.json")
    assert kept["regs"] == [] and kept["records"] == []
    assert notes == [f"replaced the earlier {tmp_path / 'bench.json'}'s results of mixup: it "
                     f"keeps no per-run records to merge (written before they were kept); add "
                     f"them to --regs (their finished runs are reused) or give --out a new "
                     f"folder"]
    assert keep_earlier(old, {"seed": 0}, ["mixup", "none"], tmp_path)[1] == []  # all again
