"""What a GAN number was measured on is said beside it: training's evaluation records and
end-of-training table name the generator scored, the progress bar names the step of the FID it
shows, and gan eval names the feature network's own accuracy as the network's."""

import contextlib
import io
import json

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.gan import train as gan_train

from .conftest import read_records

TINY = ["--preset", "digits-dcgan", "--image-size", "16", "--g-width", "8", "--d-width", "8",
        "--z-dim", "16", "--batch-size", "8", "--steps", "2", "--eval-every", "1",
        "--eval-samples", "64", "--ckpt-every", "2", "--log-every", "1", "--quiet"]


class _Bar:
    """The progress bar's calls, recorded (the run is --quiet: no bar is drawn)."""

    postfixes: list[dict] = []

    def __init__(self, *args, **kwargs):
        _Bar.postfixes = []

    def update(self, n=1):
        pass

    def set_postfix(self, values=None, **kwargs):
        _Bar.postfixes.append(dict(values or {}, **kwargs))

    def close(self):
        pass


def _train(out, *extra):
    """``gan train`` on the tiny config, its stdout and the postfixes its bar was given."""
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()) as text:
        patch.setattr(gan_train, "progress", _Bar)
        patch.setattr(gan_train, "curves", lambda *args, **kwargs: None)  # no curves read
        assert main(["gan", "train", *TINY, "--out", str(out), *extra]) == 0
    return text.getvalue(), _Bar.postfixes


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("conventions") / "ema"
    return out, *_train(out)


def _table(text):
    """The end-of-training table's rows, key -> value."""
    rows = [line.split(None, 1) for line in text.splitlines()[1:] if line.strip()]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def test_training_records_and_table_name_the_generator(ema_run, tmp_path):
    """Was: no ``generator`` field in training's records or table, while gan eval says
    ``generator ema`` of the same weights."""
    run, text, _ = ema_run
    evals = [r for r in read_records(run) if "fid" in r]
    assert [(r["step"], r["generator"]) for r in evals] == [(1, "ema"), (2, "ema")]
    assert _table(text)["generator"] == "ema"
    # no EMA kept (the SNGAN presets' ema_decay 0): G itself is scored, and named so
    text, _ = _train(tmp_path / "raw", "--ema-decay", "0")
    assert {r["generator"] for r in read_records(tmp_path / "raw") if "fid" in r} == {"G"}
    assert _table(text)["generator"] == "G"


def test_the_bar_shows_the_final_evaluation_named_by_its_step(ema_run):
    """Was: the bar's last postfix held an earlier evaluation's FID under ``fid`` (fid=139 at
    step 40/40) while the final table printed step 40's (149.33)."""
    run, text, postfixes = ema_run
    final = [r for r in read_records(run) if "fid" in r][-1]
    assert final["step"] == 2 and float(_table(text)["fid"]) == pytest.approx(final["fid"],
                                                                            abs=1e-4)
    assert postfixes[-1]["fid@2"] == f"{final['fid']:.3g}"
    assert "fid" not in postfixes[-1]  # an unlabelled value no longer
    # between evaluations the value shown names the step it was measured at
    assert any("fid@1" in post for post in postfixes)


def test_gan_eval_names_the_feature_network_accuracy(ema_run, tmp_path):
    """Was: ``test_accuracy 0.8858`` among FID and KID, the digits CNN's own accuracy."""
    run, _, _ = ema_run
    out = tmp_path / "eval.json"
    with contextlib.redirect_stdout(io.StringIO()) as text:
        assert main(["gan", "eval", str(run), "--num-samples", "20", "--real", "40",
                     "--out", str(out), "--quiet"]) == 0
    table = _table("\n" + text.getvalue())
    record = json.loads(out.read_text())
    assert "test_accuracy" not in table and "test_accuracy" not in record
    assert 0.5 < record["feature_net_test_accuracy"] <= 1
    assert float(table["feature_net_test_accuracy"]) == pytest.approx(
        record["feature_net_test_accuracy"])
    keys = list(table)  # beside the network it describes
    assert keys.index("feature_net_test_accuracy") == keys.index("extractor") + 1


@pytest.fixture
def moved_clock(monkeypatch):
    """A clock the test moves: training step k takes k seconds, each checkpoint 20 and each
    evaluation 50 (a stand-in that logs nothing); nothing else takes time."""
    from types import SimpleNamespace

    from robustrep.tasks.common import train_clock

    now = [0.0]
    monkeypatch.setattr(train_clock, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    iteration, save = gan_train.train_iteration, gan_train.Trainer.save

    def timed_iteration(ctx, next_batch):
        now[0] += ctx.d_steps // ctx.cfg.n_dis + 1  # the step index, restored on resume
        return iteration(ctx, next_batch)

    def timed_save(self):
        now[0] += 20
        save(self)

    def timed_evaluate(self):
        now[0] += 50
        self.last_eval_step = self.step

    monkeypatch.setattr(gan_train, "train_iteration", timed_iteration)
    monkeypatch.setattr(gan_train.Trainer, "save", timed_save)
    monkeypatch.setattr(gan_train.Trainer, "evaluate", timed_evaluate)


def _logged(run, key):
    return [(r["step"], r[key]) for r in read_records(run) if key in r]


def test_gan_train_s_and_step_ms_count_the_steps_as_classify_does(tmp_path, moved_clock,
                                                                  tiny_cfg):
    # Was: gan's own sums of each step's host time, without the device wait at a log's read of
    # the losses, and no time/step_ms; now classify's clock (tasks/common/train_clock.py)
    cfg = dict(steps=6, log_every=2, eval_every=3, ckpt_every=4, final_eval=False)
    gan_train.train(tiny_cfg(out=str(tmp_path / "a"), **cfg), show_progress=False)
    assert _logged(tmp_path / "a", "train_s") == [(2, 3.0), (4, 10.0), (6, 21.0)]
    assert _logged(tmp_path / "a", "time/step_ms") == [(2, 1500.0), (4, 3500.0), (6, 5500.0)]
    saved = torch.load(tmp_path / "a" / "checkpoints" / "latest.pt", weights_only=False)
    assert saved["train_seconds"] == 21.0
    # a resume goes on from the checkpoint's seconds; its first interval is its own step
    gan_train.train(tiny_cfg(out=str(tmp_path / "b"), **cfg), show_progress=False,
                    stop_after=3)
    gan_train.train(tiny_cfg(out=str(tmp_path / "b"), **cfg), resume=tmp_path / "b",
                    show_progress=False)
    assert _logged(tmp_path / "b", "train_s") == [(2, 3.0), (4, 10.0), (6, 21.0)]
    assert _logged(tmp_path / "b", "time/step_ms") == [(2, 1500.0), (4, 4000.0), (6, 5500.0)]
