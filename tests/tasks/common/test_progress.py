"""Progress on a terminal is a tqdm bar; otherwise plain log lines every interval seconds."""

import io

from tqdm.auto import tqdm

from robustrep.tasks.common.progress import LogProgress, progress, speed


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_not_a_terminal_gives_plain_lines_with_rate_eta_and_losses():
    out, clock = io.StringIO(), Clock()
    bar = LogProgress(100, initial=20, desc="gan", interval=10, file=out, clock=clock)
    for _ in range(40):  # 40 steps in 8 s: no line before 10 s have passed
        clock.t += 0.2
        bar.update(1)
    assert out.getvalue() == ""
    bar.set_postfix({"loss/d": "1.2", "loss/g": "0.9"})
    clock.t += 2.0
    bar.update(10)  # 50 steps in 10 s: 5 it/s, 30 steps left -> ETA 6 s
    assert out.getvalue() == "gan: step 70/100 (70%) 5 it/s ETA 6s loss/d=1.2 loss/g=0.9\n"
    bar.close()
    assert out.getvalue().count("\n") == 1  # the final count was already written
    final = LogProgress(10, desc="gan", interval=10, file=out, clock=clock)
    clock.t += 10
    final.update(10)  # the last step's line, then the final evaluation's value
    final.set_postfix({"fid@10": "149"})
    final.close()  # was: not written, the last line still the one before the evaluation
    assert out.getvalue().splitlines()[-2:] == ["gan: step 10/10 (100%) 1 it/s ETA 0s",
                                                "gan: step 10/10 (100%) 1 it/s ETA 0s fid@10=149"]
    clock.t += 1
    bar2 = LogProgress(10, desc="", interval=0, file=out, clock=clock)
    bar2.update(1)
    bar2.update(1)
    # no time has passed: no rate yet (a resumed run that ended at once read "0 it/s")
    assert out.getvalue().splitlines()[-2:] == ["step 1/10 (10%)", "step 2/10 (20%)"]


def test_the_rate_leaves_out_the_first_steps_warm_up_and_reads_without_an_exponent():
    # Was: the first step's 100 s warm-up entered the mean (ETA 10x the time left), and rates
    # read "1.84e+03 image/s"
    out, clock = io.StringIO(), Clock()
    bar = LogProgress(110, desc="gan", interval=10, file=out, clock=clock)
    clock.t += 100
    bar.update(1)
    for _ in range(11):
        clock.t += 1
        bar.update(1)
    assert out.getvalue().splitlines()[-1] == "gan: step 11/110 (10%) 1 it/s ETA 1m39s"
    assert [speed(r, "image") for r in (1840.4, 184.04, 7.94, 1.0)] == [
        "1840 image/s", "184 image/s", "7.94 image/s", "1 image/s"]
    assert [speed(r, "it") for r in (0.52, 1 / 3600)] == ["1.9s/it", "1h00m/it"]
    assert [speed(999.7, "it"), speed(1 / 99.96, "it")] == ["1000 it/s", "1m40s/it"]


def test_a_few_updates_that_end_together_are_paced_from_the_start():
    # Was: a report's two runs ending 1 s apart read as 1 run/s (ETA 4s, 128 s left)
    out, clock = io.StringIO(), Clock()
    bar = LogProgress(6, desc="report runs", interval=0, file=out, clock=clock, unit="run")
    for t in (64, 65):
        clock.t = t
        bar.update(1)
    assert out.getvalue().splitlines()[-1] == "report runs: run 2/6 (33%) 32.5s/run ETA 2m10s"


def test_progress_picks_by_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    assert isinstance(progress(5, file=io.StringIO()), LogProgress)
    bar = progress(5, file=Tty())
    assert isinstance(bar, tqdm)
    bar.close()
    quiet = progress(5, enabled=False, file=io.StringIO())
    quiet.update(1)
    quiet.close()


def test_a_stage_inside_a_loop_says_nothing_when_short_and_counts_without_a_known_total():
    """leave=False (an evaluation inside training): no closing line when it ended before its
    first; a total of None or 0 is written as a count, without '/0' or an ETA."""
    out, clock = io.StringIO(), Clock()
    short = LogProgress(64, desc="generated images", interval=10, file=out, clock=clock,
                        unit="image", leave=False)
    short.update(64)
    short.close()
    assert out.getvalue() == ""
    long = progress(None, desc="features of x", interval=0, file=out, unit="image", leave=False)
    long.update(250)
    long.close()
    assert out.getvalue().startswith("features of x: image 250 ")
    assert "/0" not in out.getvalue() and "ETA" not in out.getvalue()
