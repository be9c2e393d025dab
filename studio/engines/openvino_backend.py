"""OpenVINO on the CPU for a loaded diffusers pipeline: UNet, VAE decoder, text encoders.

Measured on 2 cores (issue 18): a CFG step of the mid-size test UNet takes 47 ms at 256²
and 232 ms at 512² compiled by OpenVINO, against 98 and 425 ms in PyTorch fp32; the
full-size SD 2.x UNet at 512² only 1.10× (OpenVINO by itself, `cpu_fullsize.py`), where
PyTorch's bf16 on an AMX CPU is the faster path (docs/PERFORMANCE.md).

How it plugs in: while a job runs (`OpenVinoRuntime.active()`), each converted module's
`forward` (the VAE's `decode`) is replaced on that one object by a call into its
compiled model, and put back afterwards. The pipeline, its sampler, the step callback
(previews, cancel) and the CPU noise are untouched, so seeds and recipes mean what they
meant. A module is converted on its first call, from that call's own inputs
(`openvino.convert_model(module, example_input=...)`); the IR is saved under the cache
folder keyed by the weights' hash (and the versions that made it), compiled per input
shape, and OpenVINO keeps the compiled blobs in the same folder (`CACHE_DIR`), so a
second launch skips both steps. Anything that cannot be converted or run — an input this
module does not handle, an op OpenVINO refuses — runs in PyTorch, and the job's record
says which runtime ran what.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from studio.core.store import Store

log = logging.getLogger(__name__)

#: the runtimes the image engine can run a pipeline with on the CPU (Settings.image_runtime)
RUNTIMES = ("auto", "pytorch", "openvino")
#: IR files and OpenVINO's compiled blobs live here, under the cache folder
IR_STORE = Store("openvino")

#: the pipeline attributes converted, and what the job's record calls them
COMPONENTS = {"unet": "unet", "vae": "vae_decoder", "text_encoder": "text_encoder",
              "text_encoder_2": "text_encoder_2"}


def available() -> bool:
    """True when the openvino package is installed (it is not imported to find out)."""
    return importlib.util.find_spec("openvino") is not None


def choose(setting: str, device: str) -> tuple[str, str]:
    """(runtime, why) for a job: OpenVINO only on the CPU, and only when installed."""
    if setting not in ("auto", "openvino"):
        return "pytorch", "chosen in settings"
    if device != "cpu":
        return "pytorch", f"OpenVINO runs on the CPU; this model is on {device}"
    if not available():
        return "pytorch", "the openvino package is not installed"
    return "openvino", "chosen in settings" if setting == "openvino" else "auto: CPU"


def bf16_supported() -> bool:
    """True on CPUs with native bfloat16 maths (AVX512-BF16 or AMX): there bf16 is faster;
    elsewhere it is emulated and slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass
class _Part:
    """One converted module: where its IR lives and its compiled models by input shape."""

    module: torch.nn.Module
    attribute: str  # "forward", or "decode" for the VAE
    weights_key: Callable[[], str]
    compiled: dict[tuple, Any] = field(default_factory=dict)
    model: Any = None  # the ov.Model, read or converted once
    names: tuple[str, ...] = ()  # the inputs it was converted with, in order
    layout: dict[str, Any] = field(default_factory=dict)  # text encoders: output fields
    failed: str = ""  # why OpenVINO gave up on this module ("" = it has not)
    ran: set[str] = field(default_factory=set)  # runtimes it ran with in the current job


class OpenVinoRuntime:
    """The OpenVINO side of one loaded pipeline (made once per engine, used job by job)."""

    def __init__(self, pipe: Any, weights_key: Callable[[str], str], *,
                 status: Callable[[str], None] | None = None) -> None:
        import openvino as ov

        self.ov = ov
        self.core = ov.Core()
        folder = IR_STORE.folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "compiled").mkdir(exist_ok=True)
        self.core.set_property({"CACHE_DIR": str(folder / "compiled")})
        self.status = status or (lambda _text: None)
        self.parts: dict[str, _Part] = {}
        for attr, label in COMPONENTS.items():
            module = getattr(pipe, attr, None)
            if isinstance(module, torch.nn.Module):
                name = "decode" if attr == "vae" else "forward"
                self.parts[label] = _Part(module, name, lambda attr=attr: weights_key(attr))
        self.convert_s = 0.0  # time spent converting and compiling (in the last job)

    # the job's view ----------------------------------------------------------------------
    @contextlib.contextmanager
    def active(self, *, status: Callable[[str], None] | None = None
               ) -> Iterator[dict[str, str]]:
        """Route the converted modules through OpenVINO for the duration of one job.

        Yields the record of what ran: {component: "openvino" | "pytorch" | "openvino+pytorch"},
        filled in as the job calls each module.
        """
        self.convert_s = 0.0
        if status is not None:
            self.status = status
        record: dict[str, str] = {}
        swapped: list[_Part] = []
        for label, part in self.parts.items():
            part.ran = set()
            original = getattr(part.module, part.attribute)
            runner = {"unet": self._unet, "vae_decoder": self._vae}.get(label, self._text)
            setattr(part.module, part.attribute, _bound(runner, label, part, original))
            swapped.append(part)
        try:
            yield record
        finally:
            for part in swapped:
                with contextlib.suppress(AttributeError):
                    delattr(part.module, part.attribute)  # the class's own method again
            for label, part in self.parts.items():
                if part.ran:
                    record[label] = "+".join(sorted(part.ran, reverse=True))

    def memory_bytes(self) -> int:
        """Roughly what the compiled models hold: a copy of each converted module's weights."""
        from studio.engines.devices import module_bytes

        return sum(module_bytes(p.module) for p in self.parts.values() if p.compiled)

    def failures(self) -> dict[str, str]:
        return {label: p.failed for label, p in self.parts.items() if p.failed}

    # the modules' stand-ins --------------------------------------------------------------
    def _unet(self, label: str, part: _Part, original: Callable, sample: torch.Tensor,
              timestep: Any, encoder_hidden_states: torch.Tensor | None = None, *args: Any,
              timestep_cond: torch.Tensor | None = None,
              cross_attention_kwargs: dict | None = None,
              added_cond_kwargs: dict | None = None, return_dict: bool = True,
              **kwargs: Any) -> Any:
        unsupported = args or kwargs or cross_attention_kwargs or encoder_hidden_states is None
        if not torch.is_tensor(timestep):
            timestep = torch.tensor(timestep)
        inputs: dict[str, torch.Tensor] = {
            "sample": sample, "timestep": timestep.to(torch.float32),
            "encoder_hidden_states": encoder_hidden_states,
        }
        if timestep_cond is not None:
            inputs["timestep_cond"] = timestep_cond
        for key, value in (added_cond_kwargs or {}).items():
            if not torch.is_tensor(value):
                unsupported = True
            inputs[f"added_{key}"] = value
        out = None if unsupported else self._run(label, part, _UNetIO, inputs)
        if out is None:
            part.ran.add("pytorch")
            return original(sample, timestep, encoder_hidden_states, *args,
                            timestep_cond=timestep_cond,
                            cross_attention_kwargs=cross_attention_kwargs,
                            added_cond_kwargs=added_cond_kwargs, return_dict=return_dict,
                            **kwargs)
        sample_out = out[0].to(sample.dtype)
        if return_dict:
            from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

            return UNet2DConditionOutput(sample=sample_out)
        return (sample_out,)

    def _vae(self, label: str, part: _Part, original: Callable, z: torch.Tensor,
             return_dict: bool = True, generator: Any = None, **kwargs: Any) -> Any:
        out = None if kwargs else self._run(label, part, _DecodeIO, {"z": z})
        if out is None:
            part.ran.add("pytorch")
            return original(z, return_dict=return_dict, generator=generator, **kwargs)
        image = out[0].to(z.dtype)
        if return_dict:
            from diffusers.models.autoencoders.vae import DecoderOutput

            return DecoderOutput(sample=image)
        return (image,)

    def _text(self, label: str, part: _Part, original: Callable, input_ids: torch.Tensor,
              attention_mask: torch.Tensor | None = None, *args: Any,
              output_hidden_states: bool | None = None, return_dict: bool | None = None,
              **kwargs: Any) -> Any:
        unsupported = args or kwargs or attention_mask is not None
        out = None if unsupported else self._run(label, part, _TextIO, {"input_ids": input_ids})
        if out is None:
            part.ran.add("pytorch")
            return original(input_ids, attention_mask, *args,
                            output_hidden_states=output_hidden_states,
                            return_dict=return_dict, **kwargs)
        layout = part.layout  # set when it was converted (or read back)
        values: dict[str, Any] = {}
        i = 0
        for key, count in layout["fields"]:
            values[key] = tuple(out[i:i + count]) if count else out[i]
            i += count or 1
        if not output_hidden_states:  # as the module itself would have answered
            values.pop("hidden_states", None)
        result = layout["type"](**values)
        return result if return_dict is not False else result.to_tuple()

    # converting, compiling, running ------------------------------------------------------
    def _run(self, label: str, part: _Part, io: type[torch.nn.Module],
             inputs: dict[str, torch.Tensor]) -> list[torch.Tensor] | None:
        """Outputs of the compiled module for these inputs, or None: run it in PyTorch."""
        if part.failed:
            return None
        signature = tuple((k, tuple(v.shape), str(v.dtype)) for k, v in inputs.items())
        try:
            compiled = part.compiled.get(signature)
            if compiled is None:
                compiled = self._compile(label, part, io, inputs, signature)
            result = compiled([_numpy(v) for v in inputs.values()])
            outputs = [torch.from_numpy(np.array(result[o])) for o in compiled.outputs]
        except Exception as exc:  # an op it cannot convert or run: PyTorch does this part
            part.failed = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
            log.warning("OpenVINO could not run the %s (%s); using PyTorch for it",
                        label, part.failed, exc_info=True)
            return None
        part.ran.add("openvino")
        return outputs

    def _compile(self, label: str, part: _Part, io: type[torch.nn.Module],
                 inputs: dict[str, torch.Tensor], signature: tuple) -> Any:
        t0 = time.perf_counter()
        names = tuple(inputs)
        if part.model is None or part.names != names:
            part.model = self._model(label, part, io, inputs)
            part.names = names
        model = part.model.clone()
        model.reshape({model.inputs[i]: list(v.shape) for i, v in enumerate(inputs.values())})
        threads = max(1, torch.get_num_threads())
        config = {"INFERENCE_NUM_THREADS": threads,
                  # f32 always: its bf16 hint was measured NaN or far from f32
                  # (docs/PERFORMANCE.md); bf16 jobs run in PyTorch instead
                  "INFERENCE_PRECISION_HINT": "f32"}
        compiled = self.core.compile_model(model, "CPU", config)
        part.compiled[signature] = compiled
        self.convert_s += time.perf_counter() - t0
        log.info("OpenVINO: %s compiled for %s in %.1f s", label,
                 [tuple(v.shape) for v in inputs.values()], time.perf_counter() - t0)
        return compiled

    def _model(self, label: str, part: _Part, io: type[torch.nn.Module],
               inputs: dict[str, torch.Tensor]) -> Any:
        """The module's IR: read from the cache, or converted from these inputs and saved."""
        ov = self.ov
        wrapper = io(part.module, inputs)
        key = _ir_key(part.weights_key(), label, wrapper.describe())
        xml, binary = IR_STORE.path(f"{key}.xml"), IR_STORE.path(f"{key}.bin")
        layout_key = f"{key}.layout.json"
        if xml.is_file() and binary.is_file():
            try:
                model = self.core.read_model(str(xml))
                if label.startswith("text_encoder"):
                    part.layout = wrapper.layout_from(IR_STORE.read_json(layout_key))
                return model
            except Exception:  # a damaged cache entry: convert again
                log.warning("OpenVINO: could not read %s; converting again", xml, exc_info=True)
        self.status(f"Converting the {label.replace('_', ' ')} for OpenVINO (once)…")
        t0 = time.perf_counter()
        with warnings.catch_warnings(), torch.no_grad(), _plain(part):
            warnings.simplefilter("ignore")  # the tracer's notes on Python control flow
            example = tuple(inputs.values())
            if label.startswith("text_encoder"):
                part.layout = wrapper.probe(example)
            model = ov.convert_model(wrapper, example_input=example)
        for port, name in zip(model.inputs, inputs, strict=True):
            port.get_tensor().set_names({name})
        log.info("OpenVINO: converted the %s in %.1f s", label, time.perf_counter() - t0)
        tmp_xml = xml.with_name(f".{os.getpid()}-{xml.name}")
        try:
            ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
            os.replace(tmp_xml.with_suffix(".bin"), binary)
            if label.startswith("text_encoder"):
                IR_STORE.write_json(layout_key, wrapper.layout_to(part.layout))
            os.replace(tmp_xml, xml)  # last: an .xml present means its .bin is whole
        except OSError:
            log.warning("OpenVINO: could not cache the %s's IR", label, exc_info=True)
            for leftover in (tmp_xml, tmp_xml.with_suffix(".bin")):
                leftover.unlink(missing_ok=True)
        return model


@contextlib.contextmanager
def _plain(part: _Part) -> Iterator[None]:
    """The module's own method while it is traced (not the stand-in that calls OpenVINO)."""
    stand_in = part.module.__dict__.pop(part.attribute, None)
    try:
        yield
    finally:
        if stand_in is not None:
            setattr(part.module, part.attribute, stand_in)


def _bound(runner: Callable, label: str, part: _Part, original: Callable) -> Callable:
    def call(*args: Any, **kwargs: Any) -> Any:
        return runner(label, part, original, *args, **kwargs)

    return call


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu").contiguous().numpy()


def _ir_key(weights: str, label: str, inputs: str) -> str:
    """The cache name of one module's IR: its weights, what it is, and what converted it."""
    import diffusers
    import openvino
    import transformers

    versions = f"ov {openvino.__version__} torch {torch.__version__} " \
               f"diffusers {diffusers.__version__} transformers {transformers.__version__}"
    text = f"{weights}|{label}|{inputs}|{versions}|v1"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# ---------------------------------------------------------------------------------------
# what is traced: each module behind a plain tensors-in, tensors-out forward


class _UNetIO(torch.nn.Module):
    def __init__(self, unet: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.unet = unet
        self.names = tuple(inputs)

    def describe(self) -> str:
        return ",".join(self.names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        values = dict(zip(self.names, tensors, strict=True))
        added = {k.removeprefix("added_"): v for k, v in values.items() if k.startswith("added_")}
        return self.unet(values["sample"], values["timestep"],
                         encoder_hidden_states=values["encoder_hidden_states"],
                         timestep_cond=values.get("timestep_cond"),
                         added_cond_kwargs=added or None, return_dict=False)[0]


class _DecodeIO(torch.nn.Module):
    def __init__(self, vae: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.vae = vae

    def describe(self) -> str:
        return "z"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z, return_dict=False)[0]


class _TextIO(torch.nn.Module):
    """A CLIP text encoder with every output it can give (hidden states included), flat.

    `probe` runs it once in PyTorch to learn the output's fields, so the OpenVINO side
    can hand the pipeline the same ModelOutput (`[0]`, `.hidden_states[-2]` for SDXL).
    """

    def __init__(self, encoder: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.encoder = encoder

    def describe(self) -> str:
        return f"input_ids:{type(self.encoder).__name__}"

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.encoder(input_ids, output_hidden_states=True, return_dict=True)
        flat: list[torch.Tensor] = []
        for key in out:
            value = out[key]
            flat.extend(value if isinstance(value, tuple) else (value,))
        return tuple(flat)

    def probe(self, example: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        out = self.encoder(*example, output_hidden_states=True, return_dict=True)
        fields = [(k, len(out[k]) if isinstance(out[k], tuple) else 0) for k in out]
        return {"type": type(out), "fields": fields}

    def layout_to(self, layout: dict[str, Any]) -> dict[str, Any]:
        kind = layout["type"]
        return {"type": f"{kind.__module__}:{kind.__qualname__}", "fields": layout["fields"]}

    def layout_from(self, data: Any) -> dict[str, Any]:
        import importlib

        module, _, name = str(data["type"]).partition(":")
        kind = getattr(importlib.import_module(module), name)
        return {"type": kind, "fields": [(str(k), int(n)) for k, n in data["fields"]]}
