"""The text LoRA recipe on the tiny GPT-2: data check, learning, resume, and the adapter
used by the Text panel's engine through the catalog and the Runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core import catalog, paths
from studio.core.requests import TextRequest
from studio.core.settings import Settings
from studio.core.training import TrainingError, config_for
from studio.engines.base import Events
from studio.engines.training import recipe_class
from studio.engines.training.text_lora import TextLoraRecipe, read_text

pytestmark = pytest.mark.usefixtures("one_thread")

PARAGRAPH = "The small boat sings over the quiet sea, and the heart writes light. "


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2, first trained in full on the fixture corpus for a moment: a LoRA
    adapts a model that already writes, and a randomly initialised one barely can (its
    tied embeddings cap the logits; LoRA does not train them)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.engines.tiny_text import CORPUS, build_tiny_gpt2

    folder = build_tiny_gpt2(tmp_path_factory.mktemp("base"))
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = torch.tensor([i for line in CORPUS for i in tok(line)["input_ids"] + [
        tok.eos_token_id]])
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        starts = torch.randint(0, len(ids) - 16, (8,))
        batch = torch.stack([ids[s:s + 16] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(folder)
    return folder


def make_data(root: Path) -> Path:
    data = root / "lyrics"
    data.mkdir()
    (data / "song.txt").write_text(PARAGRAPH * 12, encoding="utf-8")
    (data / "old.md").write_bytes(("Café crème at night. " * 6).encode("cp1252"))
    (data / "empty.txt").write_text("  \n", encoding="utf-8")
    (data / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (data / "notes.pdf").write_bytes(b"%PDF")  # not a text suffix: not even counted
    return data


def recipe(gpt2: Path, data: Path, **values: object) -> TextLoraRecipe:
    values = {"steps": 30, "lr": 1e-2, "batch": 4, "rank": 4, "alpha": 8.0,
              "resolution": 16, "val_split": 0.2, "seed": 3, **values}
    config = config_for("text", data=str(data), base=str(gpt2), name="my-voice", **values)
    config.validate()
    cls = recipe_class("text")
    assert cls is TextLoraRecipe
    return TextLoraRecipe(config)


def lora_weights(r: TextLoraRecipe) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in r.model.named_parameters() if v.requires_grad}


def test_the_data_check_reads_any_encoding_and_says_what_it_skipped(tmp_path: Path,
                                                                    gpt2: Path):
    r = recipe(gpt2, make_data(tmp_path))
    report = r.check_data()
    assert (report.found, report.usable) == (4, 2)
    assert dict(report.skipped) == {"blob.txt": "it is not text (binary data).",
                                    "empty.txt": "empty."}
    assert report.notes == ("1 file read as cp1252 (not UTF-8).",)
    assert "words" in report.sizes
    assert read_text("é".encode("utf-16")) == ("é", "utf-16")
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(TrainingError, match="No usable text"):
        recipe(gpt2, empty).check_data()


def test_loss_goes_down_on_a_repeated_paragraph_and_the_base_stays_frozen(
        tmp_path: Path, gpt2: Path):
    r = recipe(gpt2, make_data(tmp_path))
    r.setup()
    assert len(r.val_blocks) >= 1 and len(r.train_blocks) > len(r.val_blocks)
    frozen = {k: v.detach().clone() for k, v in r.model.named_parameters()
              if not v.requires_grad}
    val_before = r.validation_loss()
    losses = [r.train_step() for _ in range(30)]
    val_after = r.validation_loss()
    assert val_before is not None and val_after is not None
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    # measured: 5.24 → 1.15 (train), validation 5.2 → 0.69
    assert last < 0.5 * first
    assert val_after < 0.6 * val_before
    assert all(torch.equal(v, dict(r.model.named_parameters())[k]) for k, v in frozen.items())
    sample = r.samples()[0]
    assert sample.kind == "text" and sample.data.startswith("Café crème at night.")


def test_resuming_from_the_state_reaches_the_same_weights(tmp_path: Path, gpt2: Path):
    data = make_data(tmp_path)
    a = recipe(gpt2, data)
    a.setup()
    for _ in range(3):
        a.train_step()
    state = a.state_dict()
    for _ in range(3):
        a.train_step()
    b = recipe(gpt2, data)
    b.setup()
    b.load_state_dict(state)
    for _ in range(3):
        b.train_step()
    wa, wb = lora_weights(a), lora_weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_the_adapter_is_listed_with_its_base_and_changes_the_text(tmp_path: Path,
                                                                  gpt2: Path):
    from studio.engines.runner import Runner

    r = recipe(gpt2, make_data(tmp_path))
    r.setup()
    for _ in range(30):
        r.train_step()
    out = r.export(paths.trained_dir("text"))
    assert out.parent == paths.trained_dir("text")
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json",
                                                "adapter_model.safetensors", "studio.json"}
    settings = Settings(output_dir=str(tmp_path / "out"), device="cpu", model_dirs=[])
    entry = catalog.find(catalog.scan(settings), str(out))
    assert entry is not None, "the catalog does not list the adapter"
    assert (entry.family_id, entry.format, entry.base) == ("causal-lm", "peft", str(gpt2))
    assert entry.name == "my-voice (text LoRA)" and entry.usable(settings)
    assert entry in catalog.for_modality(catalog.scan(settings), "text", settings)
    assert not [e for e in catalog.scan(settings) if e.family_id == "lora"]  # not an SD LoRA

    runner = Runner(settings)

    def text(model: Path) -> str:
        req = TextRequest(prompt="The small boat", model=str(model), seed=5, max_new_tokens=12,
                          temperature=0.0)
        return runner.generate(req, Events()).text

    before = text(gpt2)
    tuned = text(out)
    after = text(gpt2)
    assert tuned != before  # the adapter changes what the same request writes
    assert after == before  # and the base model alone is as it was
    assert "sings over the quiet" in tuned and "sings" not in before  # like the data


def test_a_text_lora_is_not_a_base(tmp_path: Path, gpt2: Path):
    r = recipe(gpt2, make_data(tmp_path), steps=1)
    r.setup()
    out = r.export(tmp_path / "trained")
    other = tmp_path / "other"
    other.mkdir()
    again = recipe(out, make_data(other))
    with pytest.raises(TrainingError, match="is a text LoRA itself"):
        again.setup()


def test_a_run_through_the_trainer_resumes_to_the_same_adapter(tmp_path: Path, gpt2: Path):
    from studio.engines.training.trainer import Trainer

    data = make_data(tmp_path)

    def trainer(steps: int, where: str) -> Trainer:
        config = recipe(gpt2, data, steps=steps, save_every=3, sample_every=3,
                        eval_every=3).config
        return Trainer(config, root=tmp_path / where, models_dir=tmp_path / f"m-{where}",
                       threads=1)

    whole = trainer(6, "a")
    model = whole.run()
    assert {p.name for p in model.iterdir()} == {"adapter_config.json", "card.md",
                                                  "adapter_model.safetensors", "studio.json"}
    assert any(p.suffix == ".txt" for p in (tmp_path / "a" / "my-voice" / "samples").iterdir())
    trainer(3, "b").run()
    again = trainer(6, "b")
    again.run(resume=True)
    assert isinstance(whole.recipe, TextLoraRecipe) and isinstance(again.recipe, TextLoraRecipe)
    wa, wb = lora_weights(whole.recipe), lora_weights(again.recipe)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_gguf_base_trains_dequantised_and_its_lora_runs_on_transformers(tmp_path: Path,
                                                                          gpt2: Path):
    """A GGUF base (the built-in SmolLM2 is one) loads through transformers' GGUF support,
    dequantised; the adapter then runs on transformers, not llama.cpp (which would need
    a GGUF adapter)."""
    from studio.engines import registry
    from studio.engines.runner import Runner
    from tests.engines.tiny_text import export_gguf

    gguf = export_gguf(gpt2, tmp_path / "tiny.gguf")
    r = recipe(gguf, make_data(tmp_path))
    r.setup()
    losses = [r.train_step() for _ in range(30)]
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3])
    out = r.export(paths.trained_dir("text"))
    assert registry.route("text", str(out))[1] == "studio.engines.text_lm:TextEngine"
    assert registry.route("text", str(gguf))[1].endswith("LlamaTextEngine")
    req = TextRequest(prompt="The small boat", model=str(out), seed=5, max_new_tokens=8,
                      temperature=0.0)
    settings = Settings(output_dir=str(tmp_path / "out"), device="cpu", model_dirs=[])
    assert "sings over" in Runner(settings).generate(req, Events()).text
