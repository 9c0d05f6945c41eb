"""Resume: an interrupted run resumed to N steps equals the uninterrupted run, bit for bit (CPU)."""

import json
import re
import shutil

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.common.errors import RunFolderError
from robustrep.tasks.gan import train as gan_train
from robustrep.tasks.gan.train import train


def _weights(run):
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    return state


def _assert_equal_states(a, b):
    assert a["step"] == b["step"] and a["consumed"] == b["consumed"]
    for part in ("G", "D", "ema"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs"
    for part in ("opt_g", "opt_d"):
        for pid, st in a[part]["state"].items():
            for key, value in st.items():
                assert torch.equal(value, b[part]["state"][pid][key]), f"{part} {pid} {key}"
    assert a["regs"].keys() == b["regs"].keys()
    for name, state in a["regs"].items():  # carried state (AS-GAN free mode's delta)
        assert state.keys() == b["regs"][name].keys()
        for key, value in state.items():
            assert torch.equal(value, b["regs"][name][key]), f"regs {name} {key} differs"


@pytest.mark.parametrize("options", [
    dict(reg="none"),
    dict(reg="adaptivemix,asgan", eval_every=2, final_eval=True),
    dict(reg="asgan", asgan_free=True, ema_decay=0.9),
    dict(reg="rpgan,srmix"),
    dict(reg="ssgan,dat"),
    dict(reg="infomax,mixup"),
], ids=lambda o: o["reg"] + ("-free" if o.get("asgan_free") else ""))
def test_resume_equals_uninterrupted(options, tiny_cfg, tmp_path, records, undrawn_curves):
    full, part = tmp_path / "full", tmp_path / "part"
    train(tiny_cfg(steps=4, ckpt_every=2, out=str(full), **options), show_progress=False)
    train(tiny_cfg(steps=2, ckpt_every=2, out=str(part), **options), show_progress=False)
    assert main(["gan", "train", "--resume", str(part), "--steps", "4", "--quiet"]) == 0
    _assert_equal_states(_weights(full), _weights(part))
    steps = [r["step"] for r in records(part) if "loss/d/total" in r]
    assert steps == [1, 2, 3, 4]


def test_linear_schedule_sets_each_iterations_lr_and_resumes_on_it(tiny_cfg, tmp_path,
                                                                  monkeypatch):
    """mimicry's linear decay: iteration k of N runs at lr * (1 - k / N), its n_dis D steps too;
    a run stopped after 2 iterations resumes on the schedule (weights equal bit for bit)."""
    seen = []
    real_iteration = gan_train.train_iteration

    def spy(ctx, next_batch):
        seen.append((ctx.opt_g.param_groups[0]["lr"], ctx.opt_d.param_groups[0]["lr"]))
        return real_iteration(ctx, next_batch)

    monkeypatch.setattr(gan_train, "train_iteration", spy)
    full, part = tmp_path / "full", tmp_path / "part"
    options = dict(steps=4, ckpt_every=2, schedule="linear", lr_g=1e-3, lr_d=4e-3, n_dis=2)
    train(tiny_cfg(out=str(full), **options), show_progress=False)
    assert seen == [pytest.approx((1e-3 * f, 4e-3 * f)) for f in (1, 0.75, 0.5, 0.25)]
    train(tiny_cfg(out=str(part), **options), show_progress=False, stop_after=2)
    assert main(["gan", "train", "--resume", str(part), "--quiet"]) == 0
    assert seen[4:] == seen[:4]
    _assert_equal_states(_weights(full), _weights(part))


def test_resuming_with_another_number_of_processes_says_so(tiny_cfg, tmp_path, capsys):
    """The global batch stays (gan's --batch-size is global); the draws are seeded anew."""
    run = tmp_path / "run"
    train(tiny_cfg(steps=4, ckpt_every=2, out=str(run)), show_progress=False, stop_after=2)
    latest = run / "checkpoints" / "latest.pt"
    state = torch.load(latest, weights_only=True)
    state["ranks"] = state["ranks"] * 2  # as two processes save it
    torch.save(state, latest)
    capsys.readouterr()
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 0
    assert (f"note: {run} was trained with 2 process(es) and goes on with 1: the global batch "
            f"stays {tiny_cfg().batch_size}") in capsys.readouterr().err


def test_resume_after_crash_truncates_metrics(tiny_cfg, tmp_path, records):
    """A crash after the step-2 checkpoint: resume rewrites steps 3-4 and drops the stale ones."""
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    train(tiny_cfg(steps=4, ckpt_every=2, out=str(full)), show_progress=False)
    train(tiny_cfg(steps=4, ckpt_every=2, out=str(crashed)), show_progress=False)
    ckpts = crashed / "checkpoints"
    shutil.copy(ckpts / "step_00000002.pt", ckpts / "latest.pt")
    (ckpts / "step_00000004.pt").unlink()
    with open(crashed / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "loss/d/total": 123.0}\n')  # a record the crash left behind
    assert main(["gan", "train", "--resume", str(crashed), "--quiet"]) == 0
    _assert_equal_states(_weights(full), _weights(crashed))
    loss_steps = [r["step"] for r in records(crashed) if "loss/d/total" in r]
    assert loss_steps == [1, 2, 3, 4]
    assert all(r.get("loss/d/total") != 123.0 for r in records(crashed))


def test_resume_refuses_model_changes(tiny_cfg, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run)), show_progress=False)
    assert main(["gan", "train", "--resume", str(run), "--g-width", "16", "--quiet"]) == 2
    assert "cannot change g_width" in capsys.readouterr().err


def test_a_checkpoint_from_other_options_than_config_json_is_refused(tiny_cfg, tmp_path,
                                                                     capsys):
    # Was: an edited config.json (batch size, seed) or another run's latest.pt copied in went
    # on as a different run without a word (kimg went backwards)
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run), steps=4, ckpt_every=2), show_progress=False, stop_after=2)
    config = json.loads((run / "config.json").read_text())
    edited = {**config, "seed": 7, "batch_size": 2 * config["batch_size"]}
    (run / "config.json").write_text(json.dumps(edited))
    before = (run / "metrics.jsonl").read_text()
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (f"robustrep gan train: error: checkpoint {run}/checkpoints/latest.pt was saved "
                   f"by a run with other options than {run}/config.json holds (batch_size "
                   f"{config['batch_size']} (config.json: {edited['batch_size']}); seed 0 "
                   f"(config.json: 7)); restore config.json or the run's own checkpoint "
                   f"(options a resume may change are given as flags with --resume)\n")
    assert (run / "metrics.jsonl").read_text() == before
    (run / "config.json").write_text(json.dumps({**config, "lr_g": 1e-4}))  # may change
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 0
    # said and recorded as --lr-g 1e-4 would be (compared with the edited file: "changed": {})
    assert json.loads((run / "resumes.json").read_text()) == [
        {"step": 2, "changed": {"lr_g": {"old": config["lr_g"], "new": 1e-4}}}]
    assert f"resumed at step 2 with lr_g {config['lr_g']!r} -> 0.0001 (" in capsys.readouterr().err


def test_a_run_stopped_before_its_first_checkpoint_starts_again_as_said(tiny_cfg, tmp_path,
                                                                        capsys):
    """Was: "cannot resume RUN: no checkpoint at RUN/checkpoints/latest.pt", and no more."""
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run), steps=4, ckpt_every=2), show_progress=False)
    for made in (*(run / "checkpoints").iterdir(), run / "finished.json"):  # as if killed early
        made.unlink()
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (f"robustrep gan train: error: cannot resume {run}: no checkpoint at "
                   f"{run}/checkpoints/latest.pt; it was stopped before its first checkpoint "
                   f"(--ckpt-every 2): start it again with the command that started it, or with "
                   f"--config {run}/config.json --out {run}\n")
    assert main(["gan", "train", *err.split("or with ")[1].split(), "--quiet"]) == 0
    assert (run / "checkpoints" / "latest.pt").is_file()


def test_step_checkpoints_without_latest_are_named_and_never_overwritten(tiny_cfg, tmp_path,
                                                                         capsys):
    # Was: --resume said only "no checkpoint", and a fresh run into the folder dropped the
    # records without a word and left the old step files among the new run's; then --resume
    # said "copy it to latest.pt", which it now does itself
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run), steps=4, ckpt_every=2), show_progress=False, stop_after=2)
    (run / "checkpoints" / "latest.pt").unlink()  # a kill between step_2.pt and latest.pt
    records = (run / "metrics.jsonl").read_text()
    step = run / "checkpoints" / "step_00000002.pt"
    with pytest.raises(RunFolderError, match=re.escape(
            f"{run} holds checkpoints but no latest.pt; {step} is there, the last written: "
            f"continue from it with --resume {run}, or choose another --out")):
        train(tiny_cfg(out=str(run), steps=4, ckpt_every=2), show_progress=False)
    assert (run / "metrics.jsonl").read_text() == records
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == (
        f"note: {run} had no latest.pt (stopped while it was written); resuming from "
        f"step_00000002.pt, the last written, copied to it")
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 4


def test_a_damaged_latest_names_the_step_file_to_copy_over_it(tiny_cfg, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run), steps=4, ckpt_every=2), show_progress=False, stop_after=2)
    step = run / "checkpoints" / "step_00000002.pt"
    (run / "checkpoints" / "latest.pt").write_bytes(b"damaged")  # was: "use another checkpoint"
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(
        f"; {step} is there, the last step written: copy it over {run}/checkpoints/latest.pt to "
        f"resume from it\n")
    shutil.copy(step, run / "checkpoints" / "latest.pt")  # as the messages say
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 0


def test_new_run_refuses_existing_folder(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run)), show_progress=False)
    with pytest.raises(RunFolderError, match="--resume"):
        train(tiny_cfg(out=str(run)), show_progress=False)


def _losses(records):
    return [{k: v for k, v in r.items() if k.startswith("loss/") or k == "step"}
            for r in records if "loss/d/total" in r]


def test_checkpoints_and_interruptions_change_no_logged_mean(tiny_cfg, tmp_path, records):
    """A checkpoint or a stop between two logs keeps the sums since the last log: the loss means
    logged at step 3 and 6 are those of a run that never checkpointed or stopped."""
    opts = dict(steps=6, log_every=3)
    train(tiny_cfg(ckpt_every=0, out=str(tmp_path / "plain"), **opts), show_progress=False)
    train(tiny_cfg(ckpt_every=1, out=str(tmp_path / "every"), **opts), show_progress=False)
    train(tiny_cfg(ckpt_every=0, out=str(tmp_path / "cut"), **opts), show_progress=False,
          stop_after=2)
    assert main(["gan", "train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    plain = _losses(records(tmp_path / "plain"))
    assert [r["step"] for r in plain] == [3, 6]
    assert _losses(records(tmp_path / "every")) == plain
    assert _losses(records(tmp_path / "cut")) == plain


def test_resume_redoes_the_evaluation_a_kill_interrupted(tiny_cfg, tmp_path, records,
                                                         undrawn_curves):
    """Killed during the step-2 evaluation, after the step-2 checkpoint: the resumed run
    evaluates step 2 before it trains on, as the uninterrupted run did."""
    opts = dict(steps=4, ckpt_every=2, eval_every=2, final_eval=False)
    full, killed = tmp_path / "full", tmp_path / "killed"
    train(tiny_cfg(out=str(full), **opts), show_progress=False)
    shutil.copytree(full, killed)
    ckpts = killed / "checkpoints"
    shutil.copy(ckpts / "step_00000002.pt", ckpts / "latest.pt")
    (ckpts / "step_00000004.pt").unlink()
    kept = [r for r in records(killed) if r["step"] <= 2 and "fid" not in r]
    (killed / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    (killed / "finished.json").unlink()
    (killed / "samples" / "step_00000002.png").unlink()
    assert main(["gan", "train", "--resume", str(killed), "--quiet"]) == 0
    fids = [[(r["step"], r["fid"]) for r in records(run) if "fid" in r] for run in (full, killed)]
    assert [s for s, _ in fids[1]] == [2]
    assert fids[0] == fids[1]
    assert (killed / "samples" / "step_00000002.png").is_file()


def test_a_resume_that_lost_the_race_to_restore_latest_says_so(tiny_cfg, tmp_path, monkeypatch,
                                                              capsys):
    # was: "cannot write RUN/checkpoints/latest.pt: File exists; ... remove it or choose another
    # path ...; it stopped before making its run folder": a live run's checkpoint to delete
    from robustrep.tasks.common import runopen
    run = tmp_path / "run"
    train(tiny_cfg(out=str(run), steps=4, ckpt_every=2), show_progress=False, stop_after=2)
    latest = run / "checkpoints" / "latest.pt"
    latest.unlink()
    original = runopen.write_atomic

    def write_atomic(path, write, replace=True):
        if path == latest:  # the other resume restored it first
            latest.write_bytes((run / "checkpoints" / "step_00000002.pt").read_bytes())
        return original(path, write, replace)
    monkeypatch.setattr(runopen, "write_atomic", write_atomic)
    assert main(["gan", "train", "--resume", str(run), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"robustrep gan train: error: {run} is being resumed by another process, which restored "
        f"latest.pt meanwhile; wait for it to finish\n")
