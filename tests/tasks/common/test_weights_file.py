"""The weights-file reader on its own: prefixes, normalisation, EMA choice."""

import torch

from robustrep.tasks.common.weights_file import read_weights, strip_prefixes


def test_a_prefix_goes_only_where_every_key_has_it():
    t = torch.zeros(1)
    both = {"module.model.conv.weight": t, "module.model.fc.bias": t}
    assert list(strip_prefixes(both)) == ["conv.weight", "fc.bias"]
    # a real submodule named "model" next to another keeps its name
    mixed = {"model.conv.weight": t, "head.bias": t}
    assert strip_prefixes(mixed) == mixed


def test_a_run_checkpoints_normalisation_is_split_off_and_its_ema_taken(tmp_path):
    weights = {"model.fc.weight": torch.ones(2, 3), "mean": torch.tensor([0.5]),
               "std": torch.tensor([0.25])}
    ema = {k: v * 2 for k, v in weights.items()}
    path = tmp_path / "latest.pt"
    torch.save({"model": weights, "ema": ema, "config": {"model": "resnet10t"}}, path)
    read = read_weights(path)
    assert list(read.state) == ["fc.weight"]
    assert torch.equal(read.state["fc.weight"], torch.full((2, 3), 2.0))  # the EMA copy
    assert read.normalisation == {"mean": [1.0], "std": [0.5]}
    assert read.run_config == {"model": "resnet10t"}
    assert len(read.notes) == 1 and "ema, the EMA weights, is loaded" in read.notes[0]
    raw = read_weights(path, use_ema=False)
    assert torch.equal(raw.state["fc.weight"], torch.ones(2, 3)) and raw.notes == []
