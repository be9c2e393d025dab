"""The Lab's trainer with the GAN recipe on coloured shapes: the run folder, checkpoints
(atomic, last two plus the best), pause/resume and resume-from-checkpoint reaching the very
weights of an uninterrupted run, a NaN loss and a full disk stopping with one sentence while
the previous checkpoint stays usable, the model card."""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from studio.core.training import RunPaths, StepRecord, TrainConfig, TrainingError, config_for
from studio.engines.training import trainer as trainer_mod
from studio.engines.training.base import TrainEvents
from studio.engines.training.gan import GanRecipe
from studio.engines.training.trainer import CheckpointError, Trainer, check_base, command_line
from tests.training_toys import shapes, snapshot


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes(tmp_path_factory.mktemp("toy") / "shapes", n=12)


def tiny(toy: Path, name: str = "run", **values: Any) -> TrainConfig:
    base = dict(data=str(toy), name=name, steps=12, resolution=16, batch=4, lr=2e-3,
                save_every=4, sample_every=6, eval_every=3, val_split=0.25, seed=3)
    return config_for("gan", **{**base, **values})


def train(config: TrainConfig, events: TrainEvents | None = None, resume: bool = False,
          **kw: Any) -> tuple[Trainer, Path]:
    t = Trainer(config, events, device="cpu", threads=1, **kw)
    return t, t.run(resume=resume)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    recipe = trainer.recipe
    assert isinstance(recipe, GanRecipe)
    return {**{f"g.{k}": v.clone() for k, v in recipe.g.state_dict().items()},
            **{f"d.{k}": v.clone() for k, v in recipe.d.state_dict().items()}}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Recorder(TrainEvents):
    """Keeps what the trainer reported; `at` maps a step to something done there."""

    def __init__(self, at: dict[int, Any] | None = None) -> None:
        super().__init__()
        self.steps: list[StepRecord] = []
        self.samples: list[tuple[int, list[Path]]] = []
        self.checkpoints: list[int] = []
        self.paused_seen: list[bool] = []
        self.reports: list[Any] = []
        self.at = at or {}

    def on_data(self, report) -> None:
        self.reports.append(report)

    def on_step(self, record: StepRecord, total: int) -> None:
        self.steps.append(record)
        action = self.at.get(record.step)
        if action is not None:
            action(self)

    def on_samples(self, step: int, files: list[Path]) -> None:
        self.samples.append((step, files))

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.checkpoints.append(step)

    def on_paused(self, paused: bool) -> None:
        self.paused_seen.append(paused)


@pytest.fixture(scope="module")
def reference(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """The weights of one uninterrupted run of `tiny()`."""
    root = tmp_path_factory.mktemp("ref")
    t, _ = train(tiny(toy), root=root / "lab", models_dir=root / "models")
    return weights(t)


def test_a_run_leaves_its_folder_model_and_card(toy: Path, tmp_path: Path) -> None:
    before = snapshot(toy)
    events = Recorder()
    t, model = train(tiny(toy), events)
    run = RunPaths("run")
    assert run.root == t.paths.root and run.root.parent.name == "lab"
    assert model.parent.name == "trained" and (model / "model.safetensors").is_file()
    assert TrainConfig.from_dict(json.loads(run.config.read_text())) == tiny(toy)
    assert [r.step for r in run.read_metrics()] == list(range(1, 13))
    assert [r.step for r in events.steps] == list(range(1, 13))
    vals = [r.step for r in run.read_metrics() if r.val_loss is not None]
    assert vals == [3, 6, 9, 12]
    assert all(r.it_s > 0 and r.seconds > 0 for r in events.steps)
    assert events.checkpoints == [4, 8, 12]
    kept = sorted(p.name for p in run.checkpoints.iterdir())
    state = run.read_state()
    best = f"step-{state['best_step']:06d}.pt"
    assert set(kept) == {"step-000008.pt", "step-000012.pt", best}
    assert [s for s, _ in events.samples] == [6, 12]
    assert all(len(files) == 8 and all(f.suffix == ".png" and f.is_file() for f in files)
               for _, files in events.samples)
    assert state["state"] == "finished" and state["model"] == str(model)
    assert events.reports[0].usable == 12
    card = run.card.read_text()
    assert card == (model / "card.md").read_text()
    for part in ("## Data", "12 of 12 files usable", "| Learning rate | 0.002 |",
                 "## Losses", "Validation: best", "Overfitting:", "## Time",
                 "trained from scratch", "DCGAN, 16×16 px", command_line(tiny(toy))):
        assert part in card, part
    assert "LoRA rank" not in card
    assert snapshot(toy) == before


def test_the_same_seed_gives_the_same_weights(toy: Path, tmp_path: Path,
                                              reference: dict[str, torch.Tensor]) -> None:
    t, _ = train(tiny(toy))
    assert same(weights(t), reference)
    other, _ = train(tiny(toy, name="other", seed=4))
    assert not same(weights(other), reference)


def test_pause_and_resume_reach_the_same_weights(toy: Path,
                                                 reference: dict[str, torch.Tensor]) -> None:
    states: list[str] = []

    def pause(ev: Recorder) -> None:
        ev.pause()

        def later() -> None:
            states.append(RunPaths("run").read_state()["state"])
            ev.resume()

        threading.Timer(0.3, later).start()

    events = Recorder({5: pause})
    t, _ = train(tiny(toy), events)
    assert events.paused_seen == [True, False]
    assert states == ["paused"]
    assert same(weights(t), reference)
    assert [r.step for r in events.steps] == list(range(1, 13))
    # the pause is not counted as training time
    assert events.steps[5].seconds - events.steps[4].seconds < 0.25


def test_stop_then_resume_reaches_the_same_weights(toy: Path,
                                                   reference: dict[str, torch.Tensor]) -> None:
    events = Recorder({6: lambda ev: ev.cancel_flag.set()})
    t, model = train(tiny(toy), events)
    run = t.paths
    assert run.read_state()["state"] == "stopped"
    assert run.latest_checkpoint() == run.checkpoint(6)  # the stop saved its step
    assert (model / "model.safetensors").is_file()  # and still exported
    assert "stopped after 6 of 12 steps" in run.card.read_text()
    again, _ = train(tiny(toy), Recorder(), resume=True)
    assert same(weights(again), reference)
    assert [r.step for r in run.read_metrics()] == list(range(1, 13))
    assert run.read_state()["state"] == "finished"


class Crash(GanRecipe):
    """A GAN whose process dies (any exception) at step 7, after the checkpoint of step 4."""

    def train_step(self) -> float:
        if getattr(self, "_n", 0) == 6 and not getattr(Crash, "crashed", False):
            Crash.crashed = True
            raise RuntimeError("power cut")
        self._n = getattr(self, "_n", 0) + 1
        return super().train_step()


def test_resume_after_a_crash_truncates_the_metrics(toy: Path,
                                                    reference: dict[str, torch.Tensor]) -> None:
    Crash.crashed = False
    with pytest.raises(RuntimeError, match="power cut"):
        train(tiny(toy), recipe=Crash)
    run = RunPaths("run")
    assert [r.step for r in run.read_metrics()] == list(range(1, 7))
    assert run.latest_checkpoint() == run.checkpoint(4)
    events = Recorder()
    t, _ = train(tiny(toy), events, resume=True)
    assert [r.step for r in events.steps] == list(range(5, 13))
    assert [r.step for r in run.read_metrics()] == list(range(1, 13))
    assert same(weights(t), reference)


def test_resume_needs_a_run_and_a_new_run_a_free_name(toy: Path) -> None:
    with pytest.raises(TrainingError, match="There is no run named 'run' to resume"):
        train(tiny(toy), resume=True)
    train(tiny(toy, steps=2))
    with pytest.raises(TrainingError, match=r"A run named 'run' exists: resume it or pick "
                                            r"another name\."):
        train(tiny(toy, steps=2))
    with pytest.raises(TrainingError, match="already trained all its 2 steps"):
        train(tiny(toy, steps=2), resume=True)
    _, model = train(tiny(toy, steps=4), resume=True)  # more steps: it goes on
    assert RunPaths("run").read_state()["step"] == 4 and model.is_dir()


class Diverge(GanRecipe):
    """A GAN whose weights blow up at step 6 (as a far too high learning rate does)."""

    def train_step(self) -> float:
        self._n = getattr(self, "_n", 0) + 1
        if self._n == 6:
            with torch.no_grad():
                for p in self.g.parameters():
                    p.fill_(float("nan"))
        return super().train_step()


def test_a_nan_loss_stops_at_once_naming_the_learning_rate(toy: Path) -> None:
    events = Recorder()
    with pytest.raises(TrainingError) as caught:
        train(tiny(toy, lr=0.5), events, recipe=Diverge)
    assert str(caught.value) == ("The loss became NaN at step 6: lower the learning rate "
                                 "(now 0.5); the checkpoint of step 4 is kept.")
    assert [r.step for r in events.steps] == [1, 2, 3, 4, 5]
    run = RunPaths("run")
    state = run.read_state()
    assert state["state"] == "failed" and state["message"] == str(caught.value)
    blob = torch.load(run.checkpoint(4), weights_only=True)
    assert all(torch.isfinite(v).all() for v in blob["recipe"]["g"].values()
               if v.is_floating_point())


def test_a_full_disk_keeps_the_previous_checkpoint(toy: Path, monkeypatch) -> None:
    real = trainer_mod.atomic_write_bytes

    def full(path: Path, data: bytes, **kw: Any) -> Path:
        if path.name == "step-000008.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, **kw)

    monkeypatch.setattr(trainer_mod, "atomic_write_bytes", full)
    with pytest.raises(CheckpointError) as caught:
        train(tiny(toy))
    assert str(caught.value) == ("Could not save the checkpoint of step 8 (No space left on "
                                 "device): training stopped; the checkpoint of step 4 is "
                                 "still usable.")
    run = RunPaths("run")
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["step-000004.pt"]
    assert run.read_state()["state"] == "failed"
    monkeypatch.setattr(trainer_mod, "atomic_write_bytes", real)
    _, model = train(tiny(toy), resume=True)  # the kept checkpoint resumes
    assert model.is_dir() and [r.step for r in run.read_metrics()] == list(range(1, 13))


def test_export_the_best_checkpoint(toy: Path) -> None:
    t = Trainer(tiny(toy), device="cpu", threads=1)
    model = t.run(export_best=True)
    run = t.paths
    state = run.read_state()
    assert state["exported_step"] == state["best_step"]
    from safetensors.torch import load_file

    best = torch.load(run.checkpoint(state["best_step"]), weights_only=True)["recipe"]["g"]
    exported = load_file(model / "model.safetensors")
    assert all(torch.equal(exported[k], best[k]) for k in exported)


def test_a_base_of_the_wrong_family_is_one_sentence(tmp_path: Path) -> None:
    config = config_for("text", data=str(tmp_path), name="t", base="builtin:faces")
    with pytest.raises(TrainingError, match=r"^builtin:faces is a GAN model; the Text LoRA "
                                            r"fine-tunes causal LM models\.$"):
        check_base(config)
    missing = config_for("lora", data=str(tmp_path), name="t", base=str(tmp_path / "no.ckpt"))
    with pytest.raises(TrainingError, match="was not found"):
        check_base(missing)
    check_base(config_for("text", data=str(tmp_path), name="t", base="builtin:smollm2"))


def test_the_data_check_alone(toy: Path, tmp_path: Path) -> None:
    report = Trainer.check(tiny(toy))
    assert (report.found, report.usable) == (12, 12)
    with pytest.raises(TrainingError, match="No images found"):
        Trainer.check(tiny(tmp_path))
    from studio.core import paths

    assert not paths.lab_dir().exists()  # a check writes nothing


def test_a_full_disk_for_the_metrics_is_one_sentence(toy: Path, monkeypatch) -> None:
    real = RunPaths.append_metric

    def full(self: RunPaths, record: StepRecord) -> None:
        if record.step == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, record)

    monkeypatch.setattr(RunPaths, "append_metric", full)
    with pytest.raises(TrainingError) as caught:
        train(tiny(toy))
    assert str(caught.value) == ("Could not write the metrics of step 6 (No space left on "
                                 "device): training stopped; the checkpoint of step 4 is "
                                 "still usable.")
    assert RunPaths("run").read_state()["state"] == "failed"
