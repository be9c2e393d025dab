"""`studio batch FILE.jsonl`: a mix of requests, resumable, malformed lines reported by number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import EXIT_BAD_INPUT, EXIT_FAILED, main
from studio.core.history import History
from studio.core.recipes import read_recipe
from studio.core.requests import ImageRequest
from studio.engines.batch import (
    Job,
    Ledger,
    Outcome,
    Summary,
    copies,
    drive,
    line_seed,
    parse_line,
    read_request_file,
    request_key,
)

FACES = {"kind": "image", "model": "builtin:faces", "width": 64, "height": 64}
COMPOSER = {"kind": "music", "model": "builtin:composer", "duration": 1.0, "seed": 3}


def write_lines(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
                    encoding="utf-8")
    return path


def outputs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_a_mixed_file_runs_every_good_line_and_names_the_bad_ones(tmp_path, capsys):
    out = tmp_path / "out"
    # the JSON `studio info` prints is a line too
    assert main(["gen", "image", "--model", "builtin:faces", "--seed", "21", "--width", "64",
                 "--height", "64", "--out", str(tmp_path / "first")]) == 0
    made = capsys.readouterr().out.split()[0]
    assert main(["info", made]) == 0
    info_line = json.dumps(json.loads(capsys.readouterr().out))
    file = write_lines(tmp_path / "jobs.jsonl",
                       {**FACES, "seed": 5},
                       "{not json",
                       COMPOSER,
                       "",
                       "# a comment",
                       {**FACES, "steps": 0, "model": "x"},
                       info_line,
                       {"kind": "poem", "model": "m"})
    code = main(["batch", str(file), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_FAILED  # not every line ran
    err = captured.err
    assert "line 2: not JSON" in err
    assert "line 6: Steps must be between 1 and 1000, not 0." in err
    assert "line 8: Unknown request kind 'poem'." in err
    assert "3 done, 0 skipped" in err and "3 malformed" in err
    printed = [Path(p) for p in captured.out.split()]
    files = outputs(out)
    assert sorted(printed) == files
    assert sorted(p.suffix for p in files) == [".mid", ".png", ".png", ".wav"]
    assert len({p.name for p in files}) == len(files)
    seeds = sorted(read_recipe(p).request["seed"] for p in files if p.suffix == ".png")
    assert seeds == [5, 21]
    with History.open_default() as history:
        indexed = {item.path for item in history.recent()}
    # the .mid joins the .wav's entry; the first gen's output is indexed too
    assert {p for p in files if p.suffix != ".mid"} <= indexed


def test_a_second_run_of_a_finished_file_does_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    file = write_lines(tmp_path / "jobs.jsonl", FACES, {**FACES, "seed": 9})
    assert main(["batch", str(file), "--out", str(out), "--count", "2"]) == 0
    first = outputs(out)
    assert len(first) == 4
    capsys.readouterr()
    assert main(["batch", str(file), "--out", str(out), "--count", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "0 done, 4 skipped" in captured.err
    assert outputs(out) == first
    # a file deleted since: only its job runs again, under the same recipe
    lost = read_recipe(first[0]).request
    first[0].unlink()
    assert main(["batch", str(file), "--out", str(out), "--count", "2"]) == 0
    again = [Path(p) for p in capsys.readouterr().out.split()]
    assert len(again) == 1 and len(outputs(out)) == 4
    assert read_recipe(again[0]).request == lost


def test_random_seeds_resolve_the_same_way_on_every_read(tmp_path):
    file = write_lines(tmp_path / "jobs.jsonl", FACES, FACES, {**FACES, "seed": 4})
    jobs, bad = read_request_file(file)
    again, _ = read_request_file(file)
    assert not bad
    assert [j.key for j in jobs] == [j.key for j in again]
    seeds = [j.request.seed for j in jobs]
    assert seeds[0] != seeds[1]  # the same text on two lines: two pictures
    assert seeds[0] == line_seed(1, json.dumps(FACES)) and seeds[2] == 4
    assert -1 not in seeds
    # a variation seed is drawn only where it is used, as Request.resolved() does
    assert jobs[0].request.variation_seed == -1


def test_batch_count_copies_are_a_batch_apart_with_distinct_keys():
    request = ImageRequest(model="m", seed=10, batch_size=3)
    made = copies(request, 3)
    assert [r.seed for r in made] == [10, 13, 16]
    assert len({request_key(r) for r in made}) == 3


def test_parse_line_takes_a_recipe_or_a_bare_request():
    bare = parse_line(json.dumps({**FACES, "seed": 1}))
    recipe = parse_line(json.dumps({"source": "studio", "modality": "image",
                                    "request": {**FACES, "seed": 1}, "raw": {}}))
    assert bare == recipe
    without_kind = parse_line(json.dumps({"modality": "music",
                                          "request": {"model": "builtin:composer"}}))
    assert without_kind.kind == "music"
    for text, needle in (("[1, 2]", "not a recipe"), ('{"a": 1}', "no request"),
                         ('{"kind": "image", "model": "m", "steps": "x"}', "Steps")):
        with pytest.raises(Exception, match=needle):
            parse_line(text)


def test_bad_files_and_flags_are_one_line_exit_2(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "missing.jsonl")]) == EXIT_BAD_INPUT
    assert "No such request file" in capsys.readouterr().err
    file = write_lines(tmp_path / "jobs.jsonl", FACES)
    assert main(["batch", str(file), "--shared-out", str(tmp_path)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == "studio: --shared-out needs --ray."
    assert main(["batch", str(file), "--count", "0"]) == EXIT_BAD_INPUT
    assert "batch count" in capsys.readouterr().err
    assert not (tmp_path / "jobs.jsonl.done").exists()


def test_an_unreachable_cluster_is_one_sentence_within_seconds(tmp_path, capsys):
    pytest.importorskip("ray")
    import time

    file = write_lines(tmp_path / "jobs.jsonl", FACES)
    t0 = time.perf_counter()
    code = main(["batch", str(file), "--ray", "127.0.0.1:1", "--out", str(tmp_path / "o")])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and elapsed < 10
    assert err.strip() == "studio: Cannot reach a Ray cluster at 127.0.0.1:1: Connection refused."
    code = main(["batch", str(file), "--ray", "no-port", "--out", str(tmp_path / "o")])
    assert code == EXIT_BAD_INPUT and "HOST:PORT" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


class _FailingPool:
    """A pool whose second job fails and whose third is cancelled (Ctrl+C)."""

    def run(self, jobs, cancel):
        import numpy as np

        from studio.core.errors import Cancelled
        from studio.core.results import Result

        for i, job in enumerate(jobs):
            if i == 1:
                yield Outcome(job, error="It broke.")
            elif i == 2:
                raise Cancelled()
            else:
                yield Outcome(job, Result(job.request, "image",
                                          images=[np.zeros((64, 64, 3), np.uint8)]))


def test_drive_records_what_finished_and_a_cancelled_batch_resumes(tmp_path):
    requests = [ImageRequest(model="m", seed=s, width=64, height=64) for s in (1, 2, 3)]
    jobs = [Job(request_key(r), r, f"line {i + 1}") for i, r in enumerate(requests)]
    ledger = Ledger(tmp_path / "jobs.jsonl.done")
    summary = drive(jobs, _FailingPool(), tmp_path / "out", None, ledger=ledger)
    assert isinstance(summary, Summary)
    assert summary.cancelled and not summary.ok
    assert summary.done == 1 and summary.failed == [("line 2", "It broke.")]
    assert "cancelled: run it again" in summary.lines()[0]
    again = Ledger(tmp_path / "jobs.jsonl.done")
    assert again.finished(jobs[0].key) and not again.finished(jobs[1].key)
    (tmp_path / "jobs.jsonl.done").write_text(
        (tmp_path / "jobs.jsonl.done").read_text() + '{"key": "cut sh', encoding="utf-8")
    assert Ledger(tmp_path / "jobs.jsonl.done").finished(jobs[0].key)  # a torn line is skipped


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes_the_rest(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    file = write_lines(tmp_path / "jobs.jsonl", *({**FACES, "seed": s} for s in range(40)))
    out = tmp_path / "out"
    ledger = tmp_path / "jobs.jsonl.done"
    cmd = [sys.executable, "-m", "studio", "batch", str(file), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ledger.exists() and ledger.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # a fast machine finished all 40 first: nothing to resume
        pytest.skip("the batch finished before Ctrl+C")
    assert proc.returncode == 130, err
    assert "cancelled: run it again" in err
    done = ledger.read_text().count("\n")
    assert len(outputs(out)) == done >= 2
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{40 - done} done, {done} skipped" in rerun.stderr
    made = outputs(out)
    assert sorted(read_recipe(p).request["seed"] for p in made) == list(range(40))


def test_the_progress_bar_shows_count_rate_and_eta(capsys):
    from studio.cli.batch import ProgressBar

    bar = ProgressBar(True, width=10)
    bar(0, 4, 0.0)
    bar(1, 4, 2.0)
    err = capsys.readouterr().err
    assert "[..........] 0/4   0%" in err
    assert "[##........] 1/4  25%  2.0 s/job  ETA 6 s" in err
    bar(4, 4, 8.0)
    assert capsys.readouterr().err.endswith("4/4 100%  2.0 s/job   \n")
    ProgressBar(False)(1, 4, 1.0)
    assert capsys.readouterr().err == ""


def test_a_local_batch_never_imports_ray(tmp_path):
    import subprocess
    import sys

    file = write_lines(tmp_path / "jobs.jsonl", {**FACES, "seed": 1})
    code = ("import sys; from studio.cli import main; "
            f"rc = main(['batch', {str(file)!r}, '--out', {str(tmp_path / 'o')!r}]); "
            "print('ray' in sys.modules, rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.stdout.split()[-2:] == ["False", "0"], proc.stderr


def test_the_local_pool_can_share_a_runner_and_report_through_its_events(tmp_path):
    """What the window's worker does: its own Runner (model cache) and Events per job."""
    import threading

    from studio.core.settings import Settings
    from studio.engines.base import Events
    from studio.engines.batch import LocalPool
    from studio.engines.runner import Runner

    settings = Settings(output_dir=str(tmp_path))
    runner = Runner(settings)
    seen: list[str] = []

    def events(job: Job, cancel: threading.Event) -> Events:
        seen.append(job.where)
        return Events(cancel)

    requests = [ImageRequest(model="builtin:faces", seed=s, width=64, height=64) for s in (1, 2)]
    jobs = [Job(request_key(r), r, f"cell {i}") for i, r in enumerate(requests)]
    summary = drive(jobs, LocalPool(settings, runner, events), tmp_path, None)
    assert summary.ok and summary.done == 2 and seen == ["cell 0", "cell 1"]
    assert len(runner.cache) == 1  # the model loaded once, into the shared cache


def test_a_file_that_is_running_refuses_a_second_run_and_a_killed_runs_lock_is_taken(
        tmp_path, capsys):
    """Two runs of one file at once would do every job twice: the second says so, exit 2.
    The holder here is another process; once it is killed (SIGKILL: no cleanup), its lock
    file is still there but the next run takes it over."""
    import os
    import signal
    import subprocess
    import sys

    file = write_lines(tmp_path / "jobs.jsonl", {**FACES, "seed": 2})
    out = tmp_path / "out"
    hold = ("import sys, time; from studio.engines.batch import BatchLock; "
            f"BatchLock({str(file)!r}).acquire(); print('held', flush=True); time.sleep(300)")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True,
                              env={**os.environ})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(["batch", str(file), "--out", str(out)]) == EXIT_BAD_INPUT
        err = capsys.readouterr().err.strip()
        assert err == (f"studio: jobs.jsonl is already running (process {holder.pid}); "
                       "wait for it to finish or stop it first.")
        assert not out.exists() and not (tmp_path / "jobs.jsonl.done").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert (tmp_path / "jobs.jsonl.lock").exists()  # stale: nobody holds it now
    assert main(["batch", str(file), "--out", str(out)]) == 0
    assert len(outputs(out)) == 1
    assert not (tmp_path / "jobs.jsonl.lock").exists()  # a finished run leaves none


def test_the_batch_lock_is_held_for_the_run_and_free_after(tmp_path):
    from studio.core.errors import RequestError
    from studio.engines.batch import BatchLock

    file = write_lines(tmp_path / "jobs.jsonl", FACES)
    with BatchLock(file), pytest.raises(RequestError, match="already running"):
        BatchLock(file).acquire()
    with BatchLock(file):  # released: a new run takes it
        pass
