"""The Lab's plain data: configs, metrics files, overfitting verdicts."""

from __future__ import annotations

import pytest

from studio.core.errors import RequestError
from studio.core.training import (
    RunPaths,
    StepRecord,
    TrainConfig,
    config_for,
    list_runs,
    overfitting,
)


def test_a_config_takes_its_recipe_defaults_and_round_trips() -> None:
    config = config_for("gan", data="/data", name="shapes", steps=10)
    assert config.batch == 32 and config.resolution == 64 and config.steps == 10
    config.validate()
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(("values", "words"), [
    ({"recipe": "nope", "data": "/d", "name": "n"}, "Unknown training recipe"),
    ({"recipe": "gan", "data": "", "name": "n"}, "data folder"),
    ({"recipe": "gan", "data": "/d", "name": "../x"}, "name"),
    ({"recipe": "lora", "data": "/d", "name": "n"}, "base model"),
    ({"recipe": "gan", "data": "/d", "name": "n", "lr": 5.0}, "Learning rate"),
])
def test_bad_configs_get_one_sentence(values: dict, words: str) -> None:
    with pytest.raises(RequestError, match=words):
        TrainConfig.from_dict(values).validate()


def _records(train: list[float], val: list[float | None]) -> list[StepRecord]:
    return [StepRecord(step=i + 1, loss=t, val_loss=v) for i, (t, v) in enumerate(zip(train, val,
                                                                                    strict=True))]


def test_overfitting_is_flagged_only_when_validation_rises_while_training_falls() -> None:
    falling = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]
    healthy = overfitting(_records(falling, [1.0, 0.9, 0.8, 0.7, 0.65, 0.6, 0.55]))
    assert not healthy.flagged and healthy.best_step == 7
    over = overfitting(_records(falling, [1.0, 0.7, 0.6, 0.7, 0.8, 0.9, 1.0]))
    assert over.flagged and over.best_step == 3 and over.best_val == 0.6
    stuck = overfitting(_records([0.5] * 7, [1.0, 0.7, 0.6, 0.7, 0.8, 0.9, 1.0]))
    assert not stuck.flagged  # training did not improve either: not overfitting
    assert overfitting([]).best_step is None


def test_run_folders_keep_config_metrics_and_state(tmp_path) -> None:
    run = RunPaths("shapes", tmp_path)
    run.write_config(config_for("vae", data="/d", name="shapes"))
    run.append_metric(StepRecord(1, 0.9))
    run.append_metric(StepRecord(2, 0.8, val_loss=0.85))
    with run.metrics.open("a") as f:
        f.write('{"step": 3, "lo')  # a crash mid-line
    assert [r.step for r in run.read_metrics()] == [1, 2]
    run.write_state("paused", step=2)
    assert run.read_state() == {"state": "paused", "step": 2}
    assert run.read_config().recipe == "vae"
    assert run.latest_checkpoint() is None
    run.checkpoints.mkdir()
    for step in (100, 20):
        run.checkpoint(step).write_bytes(b"x")
    assert run.latest_checkpoint() == run.checkpoint(100)
    assert [r.name for r in list_runs(tmp_path)] == ["shapes"]
