"""One memory budget across models: LRU eviction, estimates before loading, OOM handling.

The engines here are tiny but real: each holds a torch module whose parameters
are the bytes it reports, saved to and estimated from real safetensors files.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from studio.core import catalog
from studio.core.errors import ModelError
from studio.core.requests import TextRequest
from studio.core.results import Result
from studio.core.settings import Settings
from studio.engines import memory, registry
from studio.engines.base import Engine, Events, LoadSpec
from studio.engines.cache import ModelCache, short_name
from studio.engines.devices import module_bytes
from studio.engines.runner import Runner, failure_message

MIB = 1024 * 1024
LOG: list[str] = []  # loads and unloads, in order
HELD: list[weakref.ref] = []  # tensors a failing job allocated


class TinyEngine(Engine):
    """A model id "tiny:<mb>[:oom-load|:oom-run]" loads a Linear layer of about <mb> MiB."""

    kinds = ("text",)

    def __init__(self, spec: LoadSpec, module: torch.nn.Module) -> None:
        super().__init__(spec)
        self.module = module

    @classmethod
    def load(cls, spec: LoadSpec, settings: Settings, events: Events) -> TinyEngine:
        parts = Path(spec.model).name.split(":")
        if "oom-load" in parts and not any(s.startswith("unload") for s in LOG[-1:]):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        mb = float(parts[1]) if len(parts) > 1 else 1.0
        side = int((mb * MIB / 4) ** 0.5)
        LOG.append(f"load {spec.model}")
        return cls(spec, torch.nn.Linear(side, side, bias=False))

    def generate(self, request: TextRequest, events: Events) -> Result:
        if "oom-run" in request.model and "retry" not in request.prompt:
            activations = torch.ones(256, 1024)
            HELD.append(weakref.ref(activations))
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: "
                "you tried to allocate 1099511627776 bytes."
            )
        return Result(request, "text", text=f"ok from {request.model}")

    def memory_bytes(self) -> int:
        return module_bytes(self.module) if self.module is not None else 0

    def unload(self) -> None:
        LOG.append(f"unload {self.spec.model}")
        self.module = None


@pytest.fixture(autouse=True)
def tiny_route(monkeypatch):
    LOG.clear()
    HELD.clear()
    monkeypatch.setattr(registry, "ROUTES", [("text", "tiny:", f"{__name__}:TinyEngine"),
                                             *registry.ROUTES])


def spec(name: str) -> LoadSpec:
    return LoadSpec(name, "cpu", "float32")


def loader(name: str):
    return lambda: TinyEngine.load(spec(name), Settings(), Events())


# ------------------------------------------------------------------- the cache


def test_loading_a_third_model_evicts_the_least_recently_used():
    cache = ModelCache(budget_bytes=int(2.5 * MIB))
    a = cache.get(spec("tiny:1:a"), loader("tiny:1:a"))
    b = cache.get(spec("tiny:1:b"), loader("tiny:1:b"))
    assert cache.get(spec("tiny:1:a"), loader("tiny:1:a")) is a  # a is now the most recent
    cache.get(spec("tiny:1:c"), loader("tiny:1:c"))
    assert spec("tiny:1:b") not in cache and b.module is None
    assert spec("tiny:1:a") in cache and spec("tiny:1:c") in cache
    assert cache.evicted == [spec("tiny:1:b")]
    assert cache.loads == 3 and cache.used_bytes() <= cache.budget_bytes
    assert LOG == ["load tiny:1:a", "load tiny:1:b", "load tiny:1:c", "unload tiny:1:b"]


def test_an_estimate_makes_room_before_the_load_starts():
    cache = ModelCache(budget_bytes=int(2.5 * MIB))
    cache.get(spec("tiny:1:a"), loader("tiny:1:a"))
    cache.get(spec("tiny:1:b"), loader("tiny:1:b"))
    cache.get(spec("tiny:1:c"), loader("tiny:1:c"), estimate=lambda: MIB)
    assert LOG == ["load tiny:1:a", "load tiny:1:b", "unload tiny:1:a", "load tiny:1:c"]
    calls = []
    cache.get(spec("tiny:1:c"), loader("tiny:1:c"), estimate=lambda: calls.append(1) or MIB)
    assert calls == []  # a hit never reads files for an estimate


def test_a_model_larger_than_the_budget_still_loads_alone():
    cache = ModelCache(budget_bytes=MIB)
    cache.get(spec("tiny:0.5:a"), loader("tiny:0.5:a"))
    big = cache.get(spec("tiny:3:big"), loader("tiny:3:big"), estimate=3 * MIB)
    assert len(cache) == 1 and big.memory_bytes() > cache.budget_bytes


def test_out_of_memory_while_loading_unloads_the_others_and_retries():
    cache = ModelCache(budget_bytes=0)  # unlimited: only the real OOM says no
    cache.get(spec("tiny:1:a"), loader("tiny:1:a"))
    engine = cache.get(spec("tiny:1:oom-load"), loader("tiny:1:oom-load"))
    assert engine.memory_bytes() > 0
    assert LOG == ["load tiny:1:a", "unload tiny:1:a", "load tiny:1:oom-load"]
    empty = ModelCache()
    with pytest.raises(torch.OutOfMemoryError):  # nothing else to unload: the error stands
        empty.get(spec("tiny:1:oom-load"), loader("tiny:1:oom-load"))


def test_unload_model_all_and_the_snapshot_for_the_status_bar():
    cache = ModelCache(budget_bytes=8 * MIB)
    cache.get(spec("tiny:1:a"), loader("tiny:1:a"))
    cache.get(LoadSpec("tiny:1:a", "cpu", "bfloat16"), loader("tiny:1:a"))
    cache.get(spec("tiny:2:b"), loader("tiny:2:b"))
    snapshot = cache.loaded()
    assert [m["model"] for m in snapshot] == ["tiny:1:a", "tiny:1:a", "tiny:2:b"]
    assert snapshot[0]["used_bytes"] == cache.used_bytes() == sum(m["bytes"] for m in snapshot)
    assert all(m["budget_bytes"] == 8 * MIB for m in snapshot)
    cache.unload_model("tiny:1:a")
    assert [m["model"] for m in cache.loaded()] == ["tiny:2:b"]
    cache.unload_all()
    assert cache.loaded() == [] and cache.used_bytes() == 0
    assert short_name("/x/models--org--name/snapshots/abc123") == "org/name"
    assert short_name("builtin:faces") == "faces"
    assert memory.describe([], 0) == "No models loaded"


# ------------------------------------------------------------------- estimates and budgets


def test_estimates_come_from_the_safetensors_headers(tmp_path):
    module = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.LayerNorm(32))
    folder = tmp_path / "model"
    folder.mkdir()
    save_file(module.half().state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text('{"architectures": ["TinyForCausalLM"]}')
    fp32 = module_bytes(module.float())
    assert catalog.estimate_memory(str(folder), 4) == fp32  # stored fp16, loaded fp32
    assert memory.estimate_load_bytes(LoadSpec(str(folder), "cuda", "float16")) == fp32 // 2
    assert memory.estimate_load_bytes(LoadSpec(str(tmp_path / "nothing"), "cpu", "float32")) == 0


def test_budget_zero_means_auto_from_the_machine():
    assert memory.budget_bytes(Settings(memory_budget_mb=0), "cpu") == \
        memory.default_budget_bytes("cpu")
    assert memory.default_budget_bytes("cpu") == max(
        memory.MIN_BUDGET, int(memory.total_ram_bytes() * memory.RAM_SHARE))
    assert memory.budget_bytes(Settings(memory_budget_mb=300), "cpu") == 300 * MIB
    if not torch.cuda.is_available():
        assert memory.total_vram_bytes("cuda") == 0


# ------------------------------------------------------------------- out of memory


def test_out_of_memory_is_recognised_in_its_many_forms():
    real = None
    try:
        torch.empty(1 << 62, dtype=torch.uint8)  # a failed allocation, for real
    except RuntimeError as exc:
        real = exc
    assert real is not None and memory.is_out_of_memory(real)
    assert memory.is_out_of_memory(MemoryError())
    assert memory.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory."))
    assert memory.is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1GB)"))
    assert memory.is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED"))
    try:
        try:
            raise MemoryError()
        except MemoryError as inner:
            raise ModelError("Could not load x: MemoryError") from inner
    except ModelError as wrapped:
        assert memory.is_out_of_memory(wrapped)
        assert failure_message(wrapped) == memory.OOM_MESSAGE
    assert not memory.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not memory.is_out_of_memory(ValueError("out of memory"))
    message = failure_message(torch.OutOfMemoryError("CUDA out of memory. Tried 2 GiB"))
    assert "smaller size" in message and "unload" in message


def test_runner_applies_the_budget_each_job_and_evicts_lru():
    settings = Settings(device="cpu", memory_budget_mb=3)
    runner = Runner(settings)
    for model in ("tiny:1.5:a", "tiny:1.5:b", "tiny:1.5:a", "tiny:1.5:c"):
        result = runner.generate(TextRequest(model=model, prompt="hi"), Events())
        assert result.text == f"ok from {model}"
    assert runner.cache.budget_bytes == 3 * MIB
    assert [m["model"] for m in runner.cache.loaded()] == ["tiny:1.5:a", "tiny:1.5:c"]
    assert runner.cache.evicted == [LoadSpec("tiny:1.5:b", "cpu", "float32")]
    settings.memory_budget_mb = 0  # auto, picked up by the next job
    runner.generate(TextRequest(model="tiny:1.5:a", prompt="hi"), Events())
    assert runner.cache.budget_bytes == memory.default_budget_bytes("cpu")


def test_an_oom_job_fails_with_advice_frees_what_it_held_and_the_next_job_runs():
    runner = Runner(Settings(device="cpu"))
    request = TextRequest(model="tiny:1:oom-run", prompt="a long song")
    with pytest.raises(RuntimeError) as err:
        runner.generate(request, Events())
    assert memory.is_out_of_memory(err.value)
    assert failure_message(err.value) == memory.OOM_MESSAGE
    gc.collect()
    assert HELD and HELD[0]() is None  # the job's tensors were released with its frames
    retry = runner.generate(request.replace(prompt="retry"), Events())
    assert retry.text == "ok from tiny:1:oom-run"
    assert runner.cache.loads == 1  # the model itself stayed loaded for the next job


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_real_cuda_oom_is_recognised_and_its_memory_handed_back():
    vram = memory.total_vram_bytes("cuda")
    assert vram > 0 and memory.default_budget_bytes("cuda") == max(
        memory.MIN_BUDGET, int(vram * memory.GPU_SHARE))
    before = torch.cuda.memory_allocated()
    caught = None
    try:
        held = torch.ones(4 * MIB, device="cuda")  # what a job holds when it fails
        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")  # a petabyte
    except torch.OutOfMemoryError as exc:
        caught = exc
        assert memory.is_out_of_memory(exc)
        assert failure_message(exc) == memory.OOM_MESSAGE
    assert caught is not None
    del held, caught
    memory.free_memory()
    assert torch.cuda.memory_allocated() == before


def test_a_model_written_again_at_the_same_path_is_loaded_again(tmp_path: Path) -> None:
    """The Lab re-exports a model at its path after a resume: the cache must not keep
    serving the weights it loaded before."""
    import os

    weights = tmp_path / "model" / "model.safetensors"
    weights.parent.mkdir()
    save_file({"w": torch.zeros(4)}, str(weights))
    cache = ModelCache()
    spec = LoadSpec(str(weights.parent), "cpu", "float32")

    def load() -> TinyEngine:
        from safetensors.torch import load_file

        module = torch.nn.Linear(1, 4, bias=False)
        module.weight.data = load_file(str(weights))["w"][:, None].clone()
        return TinyEngine(spec, module)

    first = cache.get(spec, load)
    assert cache.get(spec, load) is first and cache.loads == 1  # unchanged: a hit
    save_file({"w": torch.ones(4)}, str(weights))
    later = os.stat(weights).st_mtime_ns + 1_000_000_000  # a coarse clock still sees it
    os.utime(weights, ns=(later, later))
    second = cache.get(spec, load)
    assert second is not first and cache.loads == 2
    assert float(second.module.weight.sum()) == 4.0
    assert cache.get(spec, load) is second and cache.loads == 2
