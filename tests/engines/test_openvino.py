"""OpenVINO on the CPU for the image engine, on the tiny SD and SDXL pipelines.

The same seed gives pixels close to PyTorch's (the UNet, VAE decoder and text encoders
all run in OpenVINO), previews and cancel work as in PyTorch, the IR is cached and reused
by a later load, a module that cannot be converted runs in PyTorch, and the recipe says
which runtime ran what. Also: fast decode (TAESD) and bf16, both settings.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.errors import Cancelled
from studio.core.requests import ImageRequest
from studio.core.results import Preview, Progress
from studio.core.settings import Settings
from studio.engines import openvino_backend
from studio.engines.base import Events, LoadSpec
from studio.engines.image_diffusers import DiffusersImageEngine

pytest.importorskip("openvino", reason="OpenVINO is a dependency; this machine lacks it")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/fixtures.py

OPENVINO = Settings(image_runtime="openvino")


class Recorder(Events):
    """Events that carry the settings in force (as the worker's do), keep what arrives and
    can cancel at a step."""

    def __init__(self, settings: Settings = OPENVINO, cancel_at: int | None = None) -> None:
        super().__init__(threading.Event())
        self.settings = settings
        self.cancel_at = cancel_at
        self.steps: list[int] = []
        self.previews: list[Preview] = []
        self.statuses: list[str] = []

    def on_progress(self, progress: Progress) -> None:
        self.steps.append(progress.step)
        if self.cancel_at is not None and progress.step >= self.cancel_at:
            self.cancel_flag.set()

    def on_preview(self, preview: Preview) -> None:
        self.previews.append(preview)

    def on_status(self, text: str) -> None:
        self.statuses.append(text)


def _load(model: Path, **settings) -> DiffusersImageEngine:
    return DiffusersImageEngine.load(LoadSpec(str(model), "cpu", "float32"),
                                     Settings(**settings), Events())


def _request(model: Path | str, **fields) -> ImageRequest:
    fields = {"prompt": "a red fox", "seed": 1234, "steps": 3, "width": 64, "height": 64,
              "scheduler": "Euler", **fields}
    return ImageRequest(model=str(model), **fields).resolved()


@pytest.fixture(scope="module")
def engine(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DiffusersImageEngine]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_MODELS", str(tmp_path_factory.mktemp("no-models")))
        mp.setenv("STUDIO_HOME", str(tmp_path_factory.mktemp("ov-home")))
        loaded = _load(tiny_sd)
        loaded.generate(_request(tiny_sd), Recorder())  # converts once for the module
    yield loaded
    loaded.unload()


def _close(a: np.ndarray, b: np.ndarray) -> None:
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 4 and diff.mean() < 0.5, (diff.max(), diff.mean())


def test_same_seed_gives_close_pixels_and_the_recipe_says_openvino(
        engine: DiffusersImageEngine) -> None:
    request = _request(engine.spec.model, seed=77)
    torch_result = engine.generate(request, Recorder(Settings()))
    ov_result = engine.generate(request, Recorder())
    _close(ov_result.images[0], torch_result.images[0])
    assert not np.array_equal(ov_result.images[0], engine.generate(
        _request(engine.spec.model, seed=78), Recorder()).images[0])
    assert torch_result.info["runtime"] == "pytorch" and "runtime_parts" not in torch_result.info
    assert ov_result.info["runtime"] == "openvino"
    assert ov_result.info["runtime_parts"] == {
        "unet": "openvino", "vae_decoder": "openvino", "text_encoder": "openvino"}
    assert ov_result.info["runtime_note"] == "chosen in settings"
    assert ov_result.info["final_decoder"] == "vae"
    # the modules are themselves again after the job: plain PyTorch calls work as before
    assert "forward" not in vars(engine.pipe.unet) and "decode" not in vars(engine.pipe.vae)


def test_batches_and_other_sizes_compile_again(engine: DiffusersImageEngine) -> None:
    request = _request(engine.spec.model, batch_size=2, width=96, height=64)
    ov_result = engine.generate(request, Recorder())
    torch_result = engine.generate(request, Recorder(Settings()))
    for a, b in zip(ov_result.images, torch_result.images, strict=True):
        _close(a, b)


def test_previews_arrive_and_cancel_stops_before_the_decode(
        engine: DiffusersImageEngine) -> None:
    engine.preview_interval, engine.preview_budget = 0.0, 1.0
    try:
        events = Recorder()
        engine.generate(_request(engine.spec.model, steps=4), events)
        assert [p.step for p in events.previews] == [1, 2, 3, 4]
        assert all(p.data.shape == (8, 8, 3) for p in events.previews)
        decodes: list[int] = []
        runtime = engine._openvino
        original = runtime._vae
        runtime._vae = lambda *a, **k: decodes.append(1) or original(*a, **k)
        try:
            cancelling = Recorder(cancel_at=2)
            with pytest.raises(Cancelled):
                engine.generate(_request(engine.spec.model, steps=5), cancelling)
            assert cancelling.steps == [1, 2] and decodes == []
            engine.generate(_request(engine.spec.model, steps=1), Recorder())
            assert decodes == [1]  # ...and the next job runs (and decodes) as usual
        finally:
            del runtime._vae
    finally:
        del engine.preview_interval, engine.preview_budget


def test_the_ir_is_cached_by_weights_and_reused_by_a_new_load(
        tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "no-models"))
    first = Recorder()
    _load(tiny_sd).generate(_request(tiny_sd), first)
    assert any("Converting the unet" in s for s in first.statuses)
    saved = sorted(p.suffix for p in openvino_backend.IR_STORE.folder.iterdir() if p.is_file())
    assert saved.count(".xml") == 3 and saved.count(".bin") == 3  # unet, vae, text encoder
    again = Recorder()
    result = _load(tiny_sd).generate(_request(tiny_sd), again)
    assert not any("Converting" in s for s in again.statuses)  # read back, not converted
    assert result.info["runtime_parts"]["unet"] == "openvino"


def test_what_cannot_be_converted_runs_in_pytorch(
        engine: DiffusersImageEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    import openvino

    def refuse(module, **_kwargs):
        if "UNet" in type(module).__name__:
            raise RuntimeError("unsupported operation for this test")
        return convert(module, **_kwargs)

    convert = openvino.convert_model
    monkeypatch.setattr(openvino, "convert_model", refuse)
    monkeypatch.setattr(openvino_backend, "IR_STORE", openvino_backend.Store("ov-fresh"))
    kept = engine._openvino
    engine._openvino = None  # a fresh runtime, so the UNet is converted (and refused) now
    try:
        request = _request(engine.spec.model, seed=5)
        result = engine.generate(request, Recorder())
        assert result.info["runtime_parts"] == {
            "unet": "pytorch", "vae_decoder": "openvino", "text_encoder": "openvino"}
        assert result.info["runtime"] == "openvino"
        assert "unsupported operation" in engine._openvino.failures()["unet"]
        _close(result.images[0], engine.generate(request, Recorder(Settings())).images[0])
    finally:
        engine._openvino = kept


def test_runtime_choice_follows_settings_device_and_install(
        engine: DiffusersImageEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.run_options(Settings()).runtime == "pytorch"
    assert engine.run_options(Settings(image_runtime="auto")).runtime == "openvino"
    assert openvino_backend.choose("openvino", "cuda") == (
        "pytorch", "OpenVINO runs on the CPU; this model is on cuda")
    monkeypatch.setattr(openvino_backend, "available", lambda: False)
    options = engine.run_options(Settings(image_runtime="auto"))
    assert (options.runtime, options.runtime_note) == (
        "pytorch", "the openvino package is not installed")
    result = engine.generate(_request(engine.spec.model), Recorder(Settings(image_runtime="auto")))
    assert result.info["runtime"] == "pytorch"
    assert result.info["runtime_note"] == "the openvino package is not installed"


def test_settings_keep_only_known_runtimes() -> None:
    assert Settings.from_dict({"image_runtime": "openvino"}).image_runtime == "openvino"
    assert Settings.from_dict({"image_runtime": "tensorrt"}).image_runtime == "pytorch"
    loaded = Settings.from_dict({"fast_decode": True, "cpu_bf16": "yes"})
    assert loaded.fast_decode is True and loaded.cpu_bf16 is False


@pytest.mark.slow
def test_sdxl_with_two_text_encoders(tiny_sd: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.engines.test_image_single_file import build_tiny_sdxl

    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "no-models"))
    folder = build_tiny_sdxl(tmp_path / "src", tiny_sd)
    loaded = _load(folder)
    request = _request(folder, seed=9)
    ov_result = loaded.generate(request, Recorder())
    assert ov_result.info["runtime_parts"] == {
        "unet": "openvino", "vae_decoder": "openvino", "text_encoder": "openvino",
        "text_encoder_2": "openvino"}
    _close(ov_result.images[0], loaded.generate(request, Recorder(Settings())).images[0])


# ─── fast decode and bf16 ───────────────────────────────────────────────────────────────


def _with_taesd(tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                ) -> DiffusersImageEngine:
    from tests.engines.test_image_diffusers import _save_tiny_taesd

    _save_tiny_taesd(tmp_path / "models" / "taesd")
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path / "models"))
    return _load(tiny_sd)


def test_fast_decode_uses_the_tiny_autoencoder_and_says_so(
        tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _with_taesd(tiny_sd, tmp_path, monkeypatch)
    request = _request(tiny_sd, seed=3)
    fast = loaded.generate(request, Recorder(Settings(fast_decode=True)))
    full = loaded.generate(request, Recorder(Settings()))
    assert fast.info["final_decoder"] == "taesd" and full.info["final_decoder"] == "vae"
    # the same latents, decoded by TAESD by hand (its scaling factor is 1)
    latents, generators = loaded._initial_noise(request, [request.seed], [], 0.0)
    final = loaded.denoise({"prompt": request.prompt}, latents, generators,
                           steps=request.steps, guidance=request.guidance, width=64,
                           height=64, scheduler=request.scheduler, output_type="latent")
    with torch.inference_mode():
        decoded = loaded.taesd.decode(final, return_dict=False)[0]
    by_hand = ((decoded / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    expected = by_hand[0].permute(1, 2, 0).numpy()
    assert np.abs(fast.images[0].astype(int) - expected.astype(int)).max() <= 1
    assert not np.array_equal(fast.images[0], full.images[0])
    assert "decode" not in vars(loaded.pipe.vae)  # the VAE is itself again


def test_with_fast_decode_the_final_step_is_no_preview(
        tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With fast decode a preview of the last step is the final image one TAESD decode
    early (half a second of a one-step 512² job on a CPU): it is left out. With the VAE it
    stays, since it shows the picture well before the VAE's decode; and a longer job still
    shows its first step."""
    loaded = _with_taesd(tiny_sd, tmp_path, monkeypatch)
    fast, full, longer = (Recorder(Settings(fast_decode=True)), Recorder(Settings()),
                          Recorder(Settings(fast_decode=True)))
    one_step = _request(tiny_sd, steps=1)
    assert loaded.generate(one_step, fast).info["final_decoder"] == "taesd"
    loaded.generate(one_step, full)
    loaded.generate(_request(tiny_sd, steps=3), longer)
    assert fast.steps == [1] and fast.previews == []
    assert [p.step for p in full.previews] == [1]
    assert [p.step for p in longer.previews][:1] == [1] and longer.previews[-1].step < 3


def test_fast_decode_without_taesd_keeps_the_vae(engine: DiffusersImageEngine) -> None:
    result = engine.generate(_request(engine.spec.model), Recorder(Settings(fast_decode=True)))
    assert result.info["final_decoder"] == "vae"


def test_fast_decode_with_openvino(tiny_sd: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _with_taesd(tiny_sd, tmp_path, monkeypatch)
    request = _request(tiny_sd, seed=3)
    both = loaded.generate(request, Recorder(Settings(image_runtime="openvino",
                                                      fast_decode=True)))
    assert both.info["final_decoder"] == "taesd"
    assert "vae_decoder" not in both.info["runtime_parts"]  # TAESD decoded, in PyTorch
    _close(both.images[0], loaded.generate(request, Recorder(Settings(fast_decode=True)))
           .images[0])


@pytest.mark.skipif(not openvino_backend.bf16_supported(),
                    reason="this CPU has no native bfloat16 (AVX512-BF16/AMX)")
def test_bf16_on_cpus_that_have_it(engine: DiffusersImageEngine) -> None:
    request = _request(engine.spec.model, seed=11)
    bf16 = engine.generate(request, Recorder(Settings(cpu_bf16=True)))
    fp32 = engine.generate(request, Recorder(Settings()))
    assert bf16.info["bf16"] is True and "bf16" not in fp32.info
    assert bf16.images[0].dtype == np.uint8
    diff = np.abs(bf16.images[0].astype(int) - fp32.images[0].astype(int))
    assert diff.mean() < 8  # the same picture at a coarser precision


@pytest.mark.skipif(not openvino_backend.bf16_supported(),
                    reason="this CPU has no native bfloat16 (AVX512-BF16/AMX)")
def test_bf16_with_openvino_chosen_runs_in_pytorch_and_says_why(
        engine: DiffusersImageEngine) -> None:
    """OpenVINO's bf16 hint made NaN images at full size and, on these tiny weights,
    pictures as far from f32 as another seed's (32 against 47 of 255, measured); PyTorch's
    bf16 stays within 1 of 255. So bf16 runs in PyTorch, and the recipe says why."""
    request = _request(engine.spec.model, seed=21)
    both = engine.generate(request, Recorder(Settings(image_runtime="openvino",
                                                      cpu_bf16=True)))
    plain = engine.generate(request, Recorder(Settings(cpu_bf16=True)))
    assert both.info["bf16"] is True and both.info["runtime"] == "pytorch"
    assert "OpenVINO's bf16" in both.info["runtime_note"]
    np.testing.assert_array_equal(both.images[0], plain.images[0])
