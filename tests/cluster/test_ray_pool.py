"""Batches on a local Ray cluster (127.0.0.1, 2 CPUs): the same outputs as a local run,
all indexed, names unique; an actor killed mid-batch loses nothing; cancel resumes."""

from __future__ import annotations

import collections
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")

from studio.cli import main  # noqa: E402
from studio.cluster import ray_pool  # noqa: E402
from studio.core.history import History  # noqa: E402
from studio.core.recipes import read_recipe  # noqa: E402
from studio.core.requests import ImageRequest  # noqa: E402
from studio.core.settings import Settings  # noqa: E402
from studio.engines.batch import Job, Ledger, drive, read_request_file  # noqa: E402

pytestmark = pytest.mark.slow

FACES = {"kind": "image", "model": "builtin:faces", "width": 64, "height": 64}


@pytest.fixture(scope="module", autouse=True)
def cluster(tmp_path_factory):
    """One local cluster for the module; actors import this checkout."""
    home = tmp_path_factory.mktemp("ray-home")
    env = ray_pool.local_runtime_env()
    env["env_vars"]["STUDIO_HOME"] = str(home)
    with ray_pool.keep_signals():  # later tests expect the default SIGTERM handler
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 runtime_env=env, log_to_driver=False)
        yield
        ray.shutdown()


def write_lines(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def faces_file(tmp_path: Path, n: int) -> Path:
    return write_lines(tmp_path / "jobs.jsonl", [{**FACES, "seed": 100 + i} for i in range(n)])


def test_a_batch_on_two_actors_matches_the_local_run_and_a_rerun_does_nothing(tmp_path, capsys):
    lines = [{**FACES, "seed": 100 + i} for i in range(5)]
    lines.append({"kind": "music", "model": "builtin:composer", "duration": 1.0, "seed": 3})
    lines.append(FACES)  # a random seed, resolved from the line: the same on both runs
    file = write_lines(tmp_path / "jobs.jsonl", lines)
    local_file = write_lines(tmp_path / "local.jsonl", lines)
    out, local_out = tmp_path / "ray", tmp_path / "local"

    assert main(["batch", str(file), "--ray", "auto", "--actors", "2", "--out", str(out)]) == 0
    assert "7 done, 0 skipped (already done), 0 failed" in capsys.readouterr().err
    assert main(["batch", str(local_file), "--out", str(local_out)]) == 0
    capsys.readouterr()

    made = files(out)
    assert len(made) == 8  # 6 PNGs, a WAV and its MIDI
    assert len({p.name for p in made}) == len(made)
    by_recipe = {json.dumps(read_recipe(p).request, sort_keys=True): p
                 for p in made if p.suffix in (".png", ".wav")}
    local = {json.dumps(read_recipe(p).request, sort_keys=True): p
             for p in files(local_out) if p.suffix in (".png", ".wav")}
    assert by_recipe.keys() == local.keys()
    for key, path in by_recipe.items():
        if path.suffix == ".png":  # same engine, same recipe, same pixels
            assert (np.asarray(Image.open(path)) == np.asarray(Image.open(local[key]))).all()
    with History.open_default() as history:
        indexed = {item.path for item in history.recent(limit=100)}
    assert set(by_recipe.values()) <= indexed
    assert len(Ledger.beside(file).done) == 7

    assert main(["batch", str(file), "--ray", "auto", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "0 done, 7 skipped" in captured.err and captured.out == ""
    assert files(out) == made


def test_killing_an_actor_mid_batch_loses_nothing_and_writes_nothing_twice(tmp_path):
    file = faces_file(tmp_path, 8)
    jobs, _ = read_request_file(file)
    settings = Settings(output_dir=str(tmp_path / "out"))
    pool = ray_pool.RayPool(settings, actors=2)
    killed: list[str] = []

    def kill_one(done: int, total: int, elapsed: float) -> None:
        if done == 1 and not killed:
            busy = [s for s in pool.slots if s.busy is not None] or pool.slots
            killed.append(busy[0].name)
            ray.kill(busy[0].actor)

    ledger = Ledger.beside(file)
    with History.open_default() as history:
        summary = drive(jobs, pool, settings.output_path, history, ledger=ledger,
                        on_progress=kill_one)
        count = history.count()
    pool.close()
    assert killed and pool.deaths >= 1
    assert summary.ok and summary.done == 8
    made = files(tmp_path / "out")
    assert len(made) == 8 and len({p.name for p in made}) == 8
    assert sorted(read_recipe(p).request["seed"] for p in made) == list(range(100, 108))
    assert count == 8
    assert set(Ledger.beside(file).done) == {j.key for j in jobs}


def test_cancel_stops_cleanly_and_the_batch_resumes_where_it_stopped(tmp_path):
    file = faces_file(tmp_path, 6)
    jobs, _ = read_request_file(file)
    settings = Settings(output_dir=str(tmp_path / "out"))
    cancel = threading.Event()
    pool = ray_pool.RayPool(settings, actors=2)

    def stop_after_two(done: int, total: int, elapsed: float) -> None:
        if done >= 2:
            cancel.set()

    first = drive(jobs, pool, settings.output_path, None, ledger=Ledger.beside(file),
                  cancel=cancel, on_progress=stop_after_two)
    assert first.cancelled and 2 <= first.done < 6
    assert pool.slots == []  # the actors are gone with the cancel
    assert len(files(tmp_path / "out")) == first.done

    second = drive(jobs, ray_pool.RayPool(settings, actors=2), settings.output_path, None,
                   ledger=Ledger.beside(file))
    assert second.ok and second.skipped == first.done and second.done == 6 - first.done
    made = files(tmp_path / "out")
    assert sorted(read_recipe(p).request["seed"] for p in made) == list(range(100, 106))


def test_shared_out_actors_write_and_the_driver_indexes(tmp_path, capsys):
    file = faces_file(tmp_path, 3)
    shared = tmp_path / "shared"
    code = main(["batch", str(file), "--ray", "auto", "--actors", "2", "--shared-out",
                 str(shared), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    printed = sorted(Path(p) for p in capsys.readouterr().out.split())
    assert printed == files(shared) and len(printed) == 3
    assert not (tmp_path / "out").exists()
    with History.open_default() as history:
        assert {item.path for item in history.recent()} == set(printed)


def test_a_grid_on_the_cluster(tmp_path, capsys):
    code = main(["grid", "--model", "builtin:faces", "--width", "64", "--height", "64",
                 "--seed", "3", "--x", "seed", "1-4", "--ray", "auto", "--out", str(tmp_path)])
    assert code == 0
    paths = [Path(p) for p in capsys.readouterr().out.split()]
    assert [read_recipe(p).request["seed"] for p in paths[:-1]] == [1, 2, 3, 4]
    assert Image.open(paths[-1]).width == 4 * 64


def test_jobs_go_to_the_actor_that_holds_their_model():
    def job(model: str, i: int) -> Job:
        return Job(f"{model}{i}", ImageRequest(model=model), f"line {i}")

    a = ray_pool._Slot(actor=None, name="a", models={"builtin:eyes"})
    b = ray_pool._Slot(actor=None, name="b", models={"builtin:faces"})
    fresh = ray_pool._Slot(actor=None, name="c")
    pending = collections.deque([job("builtin:faces", 1), job("builtin:eyes", 2),
                                 job("builtin:faces", 3), job("m3", 4)])
    assert ray_pool.RayPool._pick(a, pending, [b]).key == "builtin:eyes2"
    # a fresh actor takes the model nobody holds, not one another actor has loaded
    assert ray_pool.RayPool._pick(fresh, pending, [a, b]).key == "m34"
    assert ray_pool.RayPool._pick(b, pending, [a]).key == "builtin:faces1"
    assert ray_pool.RayPool._pick(a, pending, [b]).key == "builtin:faces3"  # nothing else
    assert not pending


def test_starting_ray_keeps_studios_signal_handlers():
    """ray.init installs its own SIGTERM handler in the driver; connect() puts the one in
    charge before it back, so Ctrl+C and SIGTERM still cancel a batch cleanly."""
    import subprocess
    import sys

    # SIGINT is set here, not inherited: a child of a background job starts with it ignored
    code = ("import signal, sys\n"
            "def mine(*a): pass\n"
            "signal.signal(signal.SIGTERM, mine)\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from studio.cluster import ray_pool\n"
            "started = ray_pool.connect('local', num_cpus=1)\n"
            "print(started, signal.getsignal(signal.SIGTERM) is mine, "
            "signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
            "ray_pool.ray.shutdown()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.split()[-3:] == ["True", "True", "True"], proc.stderr[-2000:]


def test_actors_default_to_one_per_cpu_without_gpus():
    pool = ray_pool.RayPool(Settings(), cpus_per_actor=1)
    assert pool.n_actors == 2 and pool.gpus_per_actor == 0
