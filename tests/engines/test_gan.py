"""The built-in GANs: our modules load the packages' real weights; seeds are reproducible;
image requests work from the Art panel; GANSpace directions are computed once and cached."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.errors import ModelError, RequestError
from studio.core.explore import ExploreRequest
from studio.core.requests import ImageRequest
from studio.core.settings import Settings
from studio.engines import directions as dirs
from studio.engines.base import Events, LoadSpec
from studio.engines.gan import (
    GANS,
    GanEngine,
    GanSpec,
    colour_label,
    load_generator,
    resize,
    weights_path,
)


@pytest.fixture(scope="module")
def faces() -> GanEngine:
    return GanEngine.load(LoadSpec("builtin:faces", "cpu", "float32"), Settings(), Events())


@pytest.fixture(scope="module")
def eyes() -> GanEngine:
    return GanEngine.load(LoadSpec("builtin:eyes", "cpu", "float32"), Settings(), Events())


def tiny_spec(**changes) -> GanSpec:
    base = GanSpec("builtin:tiny", "no_such_package_xyz", "no-such-package", "w.pt", None,
                   widths=(16, 8), nz=10)
    return replace(base, **changes)


def tiny_engine(tmp_path: Path, spec: GanSpec | None = None) -> GanEngine:
    """A tiny DCGAN saved as a plain state dict and loaded back with our loader."""
    from studio.engines.gan import DCGANGenerator

    spec = spec or tiny_spec()
    torch.manual_seed(0)
    net = DCGANGenerator(spec.nz, spec.widths, spec.n_labels, spec.dropout_after_first)
    for m in net.modules():  # BatchNorm running stats as if trained, so outputs vary
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / "w.pt"
    torch.save(net.state_dict(), path)
    loaded = load_generator(spec, path)
    return GanEngine(LoadSpec(spec.model, "cpu", "float32"), spec, loaded, path)


def test_faces_load_from_the_package_with_our_module(faces):
    assert weights_path(GANS["builtin:faces"]).name == "weights.tar"
    n_params = sum(p.numel() for p in faces.net.parameters())
    assert 3_500_000 < n_params < 3_700_000
    assert not faces.net.training
    assert faces.native_size == 64
    out = faces.render([faces.latent(1)])
    assert out[0].shape == (64, 64, 3) and out[0].dtype == np.uint8
    assert out[0].std() > 10  # a picture, not a flat colour


def test_eyes_load_and_follow_the_colour_in_the_prompt(eyes):
    assert eyes.native_size == 128
    ev = Events()
    blue = eyes.generate(ImageRequest(model="builtin:eyes", prompt="a blue eye", seed=3,
                                      width=128, height=128), ev)
    brown = eyes.generate(ImageRequest(model="builtin:eyes", prompt="brown", seed=3,
                                       width=128, height=128), ev)
    assert blue.images[0].shape == (128, 128, 3)
    assert blue.info["eye_colours"] == ["blue"] and brown.info["eye_colours"] == ["brown"]
    assert not np.array_equal(blue.images[0], brown.images[0])


def test_colour_label_reads_words_mixes_and_falls_back_to_the_seed():
    vec, name = colour_label("Grey-green", 0)
    assert name == "gray+green" and sum(vec) == pytest.approx(1.0)
    assert colour_label("black and white", 0)[1] == "grayscale"
    assert colour_label("", 2)[1] == colour_label("portrait", 2)[1]
    assert {colour_label("", s)[1] for s in range(8)} == set(GANS["builtin:eyes"].labels)


def test_same_seed_same_pixels_in_a_batch_or_alone(faces):
    ev = Events()
    batch = faces.generate(ImageRequest(model="builtin:faces", seed=10, batch_size=3,
                                        width=64, height=64), ev)
    alone = faces.generate(ImageRequest(model="builtin:faces", seed=11, width=64, height=64), ev)
    assert batch.info["seeds"] == [10, 11, 12]
    assert np.array_equal(batch.images[1], alone.images[0])
    again = faces.generate(ImageRequest(model="builtin:faces", seed=11, width=64, height=64), ev)
    assert np.array_equal(again.images[0], alone.images[0])


def test_art_panel_sizes_upscale_the_native_frame(faces):
    result = faces.generate(ImageRequest(model="builtin:faces", seed=4, width=512, height=384),
                            Events())
    assert result.images[0].shape == (384, 512, 3)
    assert result.info["native_size"] == [64, 64] and result.info["upscaled"] is True
    native = faces.generate(ImageRequest(model="builtin:faces", seed=4, width=64, height=64),
                            Events())
    assert native.info["upscaled"] is False


def test_variation_seed_moves_the_face_a_little(faces):
    ev = Events()
    base = faces.generate(ImageRequest(model="builtin:faces", seed=4, width=64, height=64), ev)
    near = faces.generate(ImageRequest(model="builtin:faces", seed=4, width=64, height=64,
                                       variation_seed=99, variation_strength=0.1), ev)
    far = faces.generate(ImageRequest(model="builtin:faces", seed=99, width=64, height=64), ev)
    d_near = np.abs(near.images[0].astype(int) - base.images[0]).mean()
    d_far = np.abs(far.images[0].astype(int) - base.images[0]).mean()
    assert 0 < d_near < d_far


def test_gan_refuses_other_request_kinds(faces):
    from studio.core.requests import TextRequest

    with pytest.raises(RequestError):
        faces.generate(TextRequest(model="builtin:faces", prompt="hi"), Events())


def test_missing_package_is_a_clear_model_error():
    with pytest.raises(ModelError, match="pip install --no-deps no-such-package"):
        weights_path(tiny_spec())


def test_loader_round_trips_a_tiny_saved_generator(tmp_path):
    engine = tiny_engine(tmp_path)
    assert engine.native_size == 16
    frames = engine.render([engine.latent(1), engine.latent(2)])
    assert [f.shape for f in frames] == [(16, 16, 3)] * 2
    # the "faces" file layout: the state dict under a key
    spec = tiny_spec(state_key="netG_state_dict")
    torch.save({"netG_state_dict": engine.net.state_dict()}, tmp_path / "keyed.pt")
    again = load_generator(spec, tmp_path / "keyed.pt")
    with torch.inference_mode():
        z = engine.latent(1).reshape(1, -1)
        assert torch.equal(again(z), engine.net(z))


def test_loader_reports_a_broken_or_mismatched_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="Could not read"):
        load_generator(tiny_spec(), bad)
    engine = tiny_engine(tmp_path)
    with pytest.raises(ModelError, match="does not match"):
        load_generator(tiny_spec(widths=(32, 8)), engine.path)


def test_resize_covers_then_crops_without_stretching():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = 255
    out = resize(image, 128, 64)
    assert out.shape == (64, 128, 3)
    assert resize(image, 64, 64) is image


def test_ganspace_directions_are_unit_ordered_and_cached(tmp_path, monkeypatch):
    engine = tiny_engine(tmp_path)
    monkeypatch.setattr(dirs, "N_SAMPLES", 300)
    monkeypatch.setattr(dirs, "N_DIRECTIONS", 6)
    calls = []
    real = dirs.compute_gan_directions
    monkeypatch.setattr(dirs, "compute_gan_directions",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    first = engine.principal_directions()
    assert first.vectors.shape == (6, engine.nz)
    assert np.allclose(np.linalg.norm(first.vectors, axis=1), 1.0)
    assert list(first.variance) == sorted(first.variance, reverse=True)
    path = dirs.cache_path(engine)
    assert path.is_file() and path.parent.parent.name == "cache"
    fresh = GanEngine(engine.spec, engine.gan, engine.net, engine.path)  # a new session
    second = fresh.principal_directions()
    assert calls == [1]  # read from the cache, not recomputed
    assert np.array_equal(first.vectors, second.vectors)
    recomputed = real(engine, n_samples=300, k=6)
    assert np.allclose(recomputed.vectors, first.vectors, atol=1e-8)  # deterministic


def test_a_corrupt_direction_cache_is_recomputed(tmp_path, monkeypatch):
    engine = tiny_engine(tmp_path)
    monkeypatch.setattr(dirs, "N_SAMPLES", 200)
    monkeypatch.setattr(dirs, "N_DIRECTIONS", 4)
    path = dirs.cache_path(engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"garbage")
    monkeypatch.setattr(dirs, "compute_gan_directions",
                        lambda eng, events=None: dirs.PrincipalDirections(
                            eng.gan.model, np.eye(4, eng.nz), np.ones(4) / 4, np.ones(4)))
    found = dirs.gan_directions(engine)
    assert found.vectors.shape == (4, engine.nz)
    assert dirs.load_directions(path) is not None


def test_principal_direction_changes_the_face_and_zero_does_not(faces):
    ev = Events()
    base = ExploreRequest(model="builtin:faces", anchors=(5,), width=64, height=64)
    plain = faces.generate(base.resolved(), ev).images[0]
    zero = faces.generate(replace(base, directions={"pc1": 0.0}).resolved(), ev).images[0]
    moved = faces.generate(replace(base, directions={"pc1": 2.5}).resolved(), ev).images[0]
    own = faces.generate(ImageRequest(model="builtin:faces", seed=5, width=64, height=64),
                         ev).images[0]
    assert np.array_equal(plain, own) and np.array_equal(zero, plain)
    assert np.abs(moved.astype(int) - plain).mean() > 5
