"""A GAN the Lab just trained opens in the explorer's session like the built-in GANs: the
catalog entry gives its family and native size, and the real worker renders its frames."""

from __future__ import annotations

from pathlib import Path

from studio.core import catalog
from studio.core.history import History
from studio.core.settings import Settings
from studio.core.training import config_for
from studio.engines.training.trainer import Trainer
from studio.runtime.explore_session import ExploreSession
from studio.runtime.worker import JobQueue
from tests.training_toys import shapes

WAIT = 60000


def test_a_trained_gan_explores_through_the_worker(qtbot, tmp_path: Path) -> None:
    config = config_for("gan", data=str(shapes(tmp_path / "shapes", n=4)), name="sketchy",
                        steps=2, resolution=16, batch=2, val_split=0.0)
    model = str(Trainer(config, device="cpu", threads=1).run())
    entries = catalog.scan(Settings())
    assert any(e.id == model and e.explorable for e in entries)
    history = History(tmp_path / "history.sqlite")
    jobs = JobQueue(Settings(output_dir=str(tmp_path / "out"), device="cpu"), history)
    try:
        session = ExploreSession(jobs, history, models=lambda: entries)
        session.set_anchors([3, 4], render=False)
        session.set_model(model)
        assert session.native_size() == (64, 64) and not session.conditional  # 16 px × 4
        request = session.point_request()
        request.validate()
        assert (request.width, request.height) == (64, 64) and request.prompts == ()
        frames, errors = [], []
        session.frame_changed.connect(lambda result, caption: frames.append(result))
        session.error.connect(errors.append)
        session.activate()
        qtbot.waitUntil(lambda: bool(frames or errors) and not session.busy(), timeout=WAIT)
        assert errors == []
        assert frames[0].images[0].shape == (64, 64, 3)
        assert frames[0].info["native_size"] == [16, 16]
        assert session.direction_keys[:2] == ["pc1", "pc2"]
    finally:
        jobs.shutdown()
        qtbot.waitUntil(jobs._thread.isFinished, timeout=20000)
        history.close()
