"""A1111 prompts to CLIP conditioning, on tiny CLIP text models built from configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from studio.core import prompts
from studio.core.errors import RequestError
from studio.core.prompts import Fragment
from studio.engines import prompt_encoding as pe
from tests.tiny import tiny_sdxl_pipe

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = ["red", "fox", "cat", "dog", "sky", "sun"]


def tiny_tokenizer(pad: str = "<|endoftext|>") -> Any:
    """A CLIP BPE tokenizer with letters, a comma and a few whole words (no files)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2, ",": 3, ",</w>": 4}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    merges: list[tuple[str, str]] = []
    for word in WORDS:  # merge each word letter by letter into one token
        piece = word[0]
        for i, ch in enumerate(word[1:], 1):
            nxt = ch + ("</w>" if i == len(word) - 1 else "")
            merges.append((piece, nxt))
            piece = piece + nxt
            vocab.setdefault(piece, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77, pad_token=pad)


def tiny_clip(vocab_size: int, *, projection: bool = False, seed: int = 0) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
                            intermediate_size=37, num_attention_heads=4, num_hidden_layers=3,
                            vocab_size=vocab_size, max_position_embeddings=77, projection_dim=32)
    model = (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)
    return trained_norm(model.eval())


def trained_norm(model: Any) -> Any:
    """Give the final layer norm non-trivial affine weights, as a trained CLIP has.

    A fresh LayerNorm makes every row average to exactly 0, and A1111's mean
    restoration (mean before / mean after) needs a mean that is not zero.
    """
    norm = getattr(model, "text_model", model).final_layer_norm
    with torch.no_grad():
        norm.weight.copy_(1 + 0.1 * torch.randn_like(norm.weight))
        norm.bias.copy_(0.3 + 0.5 * torch.randn_like(norm.bias))
    return model


@pytest.fixture(scope="module")
def encoder() -> pe.ClipEncoder:
    tokenizer = tiny_tokenizer()
    return pe.ClipEncoder(tokenizer, tiny_clip(len(tokenizer)))


def fragments(text: str) -> list[Fragment]:
    return prompts.parse_attention(text)[0]


def raw_hidden(encoder: pe.ClipEncoder, text: str) -> torch.Tensor:
    """The plain encoder output for one text padded to 77 tokens (no weights)."""
    ids = encoder.tokenizer(text, padding="max_length", max_length=77, truncation=True,
                            return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder.model(input_ids=ids).last_hidden_state


# ─── the maths on one encoder ─────────────────────────────────────────────────────────


def test_a_weighted_token_is_scaled_then_the_mean_restored(encoder: pe.ClipEncoder) -> None:
    z, pooled = pe.encode_texts(encoder, [fragments("red (fox:1.5) sky")])
    assert pooled is None and z.shape == (1, 77, 32)
    plain = raw_hidden(encoder, "red fox sky")
    weights = torch.ones(77)
    weights[2] = 1.5  # BOS, red, fox ...
    expected = plain * weights[None, :, None]
    expected = expected * (plain.mean() / expected.mean())
    assert torch.allclose(z, expected, atol=1e-6)
    assert torch.isclose(z.mean(), plain.mean(), atol=1e-7)
    # the weighted row moved by 1.5× (up to the common factor), the others only by that factor
    factor = plain.mean() / (plain * weights[None, :, None]).mean()
    assert torch.allclose(z[0, 2], plain[0, 2] * 1.5 * factor, atol=1e-6)
    assert torch.allclose(z[0, 1], plain[0, 1] * factor, atol=1e-6)


def test_weight_one_everywhere_is_the_plain_encoder(encoder: pe.ClipEncoder) -> None:
    z, _ = pe.encode_texts(encoder, [fragments("a red fox, sky")])
    assert torch.equal(z, raw_hidden(encoder, "a red fox, sky"))


def test_clip_skip_takes_a_layer_from_the_end_through_the_final_norm(
        encoder: pe.ClipEncoder) -> None:
    z, _ = pe.encode_texts(encoder, [fragments("red fox")], clip_skip=2)
    ids = encoder.tokenizer("red fox", padding="max_length", max_length=77,
                            return_tensors="pt").input_ids
    with torch.no_grad():
        out = encoder.model(input_ids=ids, output_hidden_states=True)
        norm = getattr(encoder.model, "text_model", encoder.model).final_layer_norm
        expected = norm(out.hidden_states[-2])
    assert torch.allclose(z, expected, atol=1e-6)
    assert not torch.allclose(z, out.last_hidden_state, atol=1e-3)
    with pytest.raises(RequestError, match="Clip skip 9"):
        pe.encode_texts(encoder, [fragments("red")], clip_skip=9)


def test_a_long_prompt_makes_two_chunks(encoder: pe.ClipEncoder) -> None:
    long = " ".join(["red fox"] * 50)  # 100 tokens
    z, _ = pe.encode_texts(encoder, [fragments(long)])
    assert z.shape == (1, 154, 32)
    first_77 = raw_hidden(encoder, long)  # what a 77-token encoder would see
    assert torch.allclose(z[:, :77], first_77, atol=1e-6)
    tail = " ".join((["red", "fox"] * 50)[75:])  # one token per word here
    assert torch.allclose(z[:, 77:], raw_hidden(encoder, tail), atol=1e-6)


def test_break_starts_a_new_chunk(encoder: pe.ClipEncoder) -> None:
    z, _ = pe.encode_texts(encoder, [fragments("red fox BREAK sky")])
    assert z.shape == (1, 154, 32)
    assert torch.equal(z[:, :77], raw_hidden(encoder, "red fox"))
    assert torch.equal(z[:, 77:], raw_hidden(encoder, "sky"))


def test_a_chunk_boundary_moves_back_to_the_last_comma(encoder: pe.ClipEncoder) -> None:
    text = " ".join(["red"] * 70) + ", " + " ".join(["fox"] * 10)
    chunks, count = pe.chunks_of(encoder, fragments(text))
    assert [len(c.tokens) for c in chunks] == [71, 10]
    assert chunks[0].tokens[-1] == encoder.comma and count == 85
    assert pe.count_tokens(encoder.tokenizer, text) == (85, 150)


def test_pad_after_the_first_eos_when_the_tokenizer_pads_differently() -> None:
    tokenizer = tiny_tokenizer(pad="!")
    enc = pe.ClipEncoder(tokenizer, None)
    ids, weights = pe.chunk_ids(enc, prompts.Chunk([5, 7], [1.0, 1.3]))
    assert ids[:4] == [0, 5, 7, 1] and set(ids[4:]) == {2} and len(ids) == 77
    assert weights[:4] == [1.0, 1.0, 1.3, 1.0] and len(weights) == 77
    sd1 = pe.chunk_ids(pe.ClipEncoder(tiny_tokenizer(), None), prompts.Chunk([5], [1.0]))[0]
    assert sd1[:2] == [0, 5] and set(sd1[2:]) == {1}


def test_multi_vector_embedding_tokens_are_spelled_out_as_diffusers_does() -> None:
    from diffusers.loaders import TextualInversionLoaderMixin

    class Pipe(TextualInversionLoaderMixin):
        def __init__(self) -> None:
            self.tokenizer = tiny_tokenizer()
            self.tokenizer.add_tokens(["<style>", "<style>_1", "<style>_2"])
            self.text_encoder = tiny_clip(len(self.tokenizer))

    pipe = Pipe()
    [enc] = pe.encoders_of(pipe)
    ids = pe.tokenize(enc, fragments("red <style> fox"))
    added = pipe.tokenizer.convert_tokens_to_ids(["<style>", "<style>_1", "<style>_2"])
    assert ids[0][1:4] == added and len(ids[0]) == 5


def test_count_tokens_for_the_prompt_box(encoder: pe.ClipEncoder) -> None:
    tok = encoder.tokenizer
    assert pe.count_tokens(tok, "") == (0, 75)
    assert pe.count_tokens(tok, "red (fox:1.3) <lora:x:bad>") == (2, 75)
    assert pe.count_tokens(tok, "red BREAK fox") == (76, 150)
    assert pe.count_tokens(tok, "[red:red fox sky:0.5]") == (3, 75)  # the longest step


# ─── SD 1.x pipeline ──────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def sd_pipe(tiny_sd: Path) -> Any:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd)
    pipe.set_progress_bar_config(disable=True)
    torch.manual_seed(5)
    trained_norm(pipe.text_encoder)
    return pipe


def _run(pipe: Any, steps: int = 3, **kwargs: Any) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(7)
    out = pipe(num_inference_steps=steps, guidance_scale=5.0, height=32, width=32,
               generator=generator, output_type="np", **kwargs)
    return np.asarray(out.images)


def test_unweighted_short_prompt_equals_diffusers_encode_prompt(sd_pipe: Any) -> None:
    cond = pe.encode_for_pipeline(sd_pipe, "a red fox", "cat", steps=4)
    ours = cond.pipeline_kwargs()
    theirs, theirs_neg = sd_pipe.encode_prompt("a red fox", "cpu", 1, True, "cat")
    assert torch.allclose(ours["prompt_embeds"], theirs, atol=1e-6)
    assert torch.allclose(ours["negative_prompt_embeds"], theirs_neg, atol=1e-6)


def test_the_pipeline_accepts_the_embeds_and_a_long_prompt_renders_differently(
        sd_pipe: Any) -> None:
    long = " ".join(["red fox"] * 20) + " " + " ".join(["cat"] * 10)  # 100 tokens here
    cond = pe.encode_for_pipeline(sd_pipe, long, "dog", steps=3)
    kwargs = cond.pipeline_kwargs()
    assert kwargs["prompt_embeds"].shape == (1, 154, 32)
    assert kwargs["negative_prompt_embeds"].shape == (1, 154, 32)  # padded to the prompt
    ours = _run(sd_pipe, **kwargs)
    truncated = _run(sd_pipe, prompt=long, negative_prompt="dog")  # diffusers cuts at 77
    assert ours.shape == truncated.shape == (1, 32, 32, 3)
    assert np.abs(ours - truncated).max() > 1e-3
    short = pe.encode_for_pipeline(sd_pipe, "red fox", "dog", steps=3).pipeline_kwargs()
    assert np.allclose(_run(sd_pipe, **short), _run(sd_pipe, prompt="red fox",
                                                    negative_prompt="dog"), atol=1e-5)


def test_the_negative_is_padded_with_the_empty_prompt(sd_pipe: Any) -> None:
    cond = pe.encode_for_pipeline(sd_pipe, "red BREAK fox BREAK cat", "dog", steps=3)
    negative = cond.pipeline_kwargs()["negative_prompt_embeds"]
    assert negative.shape == (1, 231, 32) and cond.chunks == 3
    empty = pe.encode_for_pipeline(sd_pipe, "", "", steps=3).pipeline_kwargs()["prompt_embeds"]
    dog = pe.encode_for_pipeline(sd_pipe, "dog", "", steps=3).pipeline_kwargs()["prompt_embeds"]
    assert torch.equal(negative[:, :77], dog) and torch.equal(negative[:, 77:154], empty)
    assert torch.equal(negative[:, 154:], empty)


def test_prompt_editing_swaps_the_conditioning_during_the_run(sd_pipe: Any) -> None:
    cond = pe.encode_for_pipeline(sd_pipe, "a [cat:dog:1] (sky:1.2)", "", steps=3)
    assert cond.scheduled and cond.tensor_inputs == ["prompt_embeds"]
    cat = pe.encode_for_pipeline(sd_pipe, "a cat (sky:1.2)", "", steps=3).pipeline_kwargs()
    dog = pe.encode_for_pipeline(sd_pipe, "a dog (sky:1.2)", "", steps=3).pipeline_kwargs()
    # A1111 encodes a prompt's scheduled texts as one batch: the mean it restores is
    # the batch's, so each text is close to, not exactly, its encoding alone
    batch, _ = pe.encode_texts(pe.encoders_of(sd_pipe)[0],
                               [fragments("a cat (sky:1.2)"), fragments("a dog (sky:1.2)")])
    # A1111's steps: 0 and 1 read "cat" (1 <= end step 1), step 2 "dog"
    assert torch.equal(cond.embeds_at(0)["prompt_embeds"], batch[0:1])
    assert torch.equal(cond.embeds_at(1)["prompt_embeds"], batch[0:1])
    assert torch.equal(cond.embeds_at(2)["prompt_embeds"], batch[1:2])
    assert torch.allclose(batch[0:1], cat["prompt_embeds"], atol=1e-3)
    assert not torch.equal(batch[0:1], cat["prompt_embeds"])

    class Fake:
        do_classifier_free_guidance = True

    current = torch.zeros(4, 77, 32)  # [negative×2, positive×2]
    assert cond.step_update(Fake(), 0, {"prompt_embeds": current}) == {}
    update = cond.step_update(Fake(), 1, {"prompt_embeds": current})["prompt_embeds"]
    assert update.shape == (4, 77, 32)
    assert torch.equal(update[2], batch[1]) and torch.equal(update[3], batch[1])
    assert torch.equal(update[0], dog["negative_prompt_embeds"][0])

    seen: list[int] = []

    def on_step_end(pipe: Any, i: int, _t: Any, kwargs: dict) -> dict:
        seen.append(i)
        return cond.step_update(pipe, i, kwargs)

    unet_saw: list[torch.Tensor] = []

    def record(_module: Any, _args: Any, kwargs: dict) -> None:
        unet_saw.append(kwargs["encoder_hidden_states"].clone())

    hook = sd_pipe.unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        edited = _run(sd_pipe, callback_on_step_end=on_step_end,
                      callback_on_step_end_tensor_inputs=cond.tensor_inputs,
                      **cond.pipeline_kwargs())
    finally:
        hook.remove()
    assert seen == [0, 1, 2] and len(unet_saw) == 3 and np.isfinite(edited).all()
    # the UNet got [negative, positive]: "cat" for steps 0 and 1, "dog" for step 2
    assert [torch.equal(saw[1], batch[0]) for saw in unet_saw] == [True, True, False]
    assert torch.equal(unet_saw[2][1], batch[1])


def test_lora_tags_are_not_encoded_and_warnings_come_back(sd_pipe: Any) -> None:
    cond = pe.encode_for_pipeline(sd_pipe, "red fox <lora:foxy:0.7> (sky", "<lora:x:1>", steps=3)
    assert [(r.name, r.weight) for r in cond.loras] == [("foxy", 0.7)]
    plain = pe.encode_for_pipeline(sd_pipe, "red fox  (sky", "<lora:x:1>", steps=3)
    assert torch.equal(cond.pipeline_kwargs()["prompt_embeds"],
                       plain.pipeline_kwargs()["prompt_embeds"])
    assert any("never closed" in w for w in cond.warnings)
    assert any(w.startswith("Negative prompt:") and "read as words" in w for w in cond.warnings)
    with pytest.raises(prompts.PromptError, match="not a number"):
        pe.encode_for_pipeline(sd_pipe, "<lora:foxy:lots>", "", steps=3)


# ─── SDXL ─────────────────────────────────────────────────────────────────────────────


def tiny_xl(**sizes: Any) -> Any:
    """A tiny SDXL pipeline on two tiny CLIPs (the second with a projection), not saved;
    `sizes` go to tests.tiny.tiny_sdxl_pipe."""
    tokenizer, tokenizer_2 = tiny_tokenizer(), tiny_tokenizer(pad="!")
    return tiny_sdxl_pipe(
        (tokenizer, tokenizer_2),
        lambda: (tiny_clip(len(tokenizer), seed=1),
                 tiny_clip(len(tokenizer_2), projection=True, seed=2)),
        **sizes)


@pytest.fixture(scope="module")
def xl_pipe() -> Any:
    pipe = tiny_xl(sample_size=16, vae=2)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_sdxl_shapes_pooled_and_zero_negative(xl_pipe: Any) -> None:
    cond = pe.encode_for_pipeline(xl_pipe, "a red fox", "", steps=2)
    kwargs = cond.pipeline_kwargs()
    assert kwargs["prompt_embeds"].shape == (1, 77, 64)
    assert kwargs["pooled_prompt_embeds"].shape == (1, 32)
    assert not kwargs["negative_prompt_embeds"].any()
    assert not kwargs["negative_pooled_prompt_embeds"].any()
    # unweighted and short, it equals diffusers' own SDXL encoding
    theirs = xl_pipe.encode_prompt("a red fox", device="cpu", negative_prompt="cat")
    ours = pe.encode_for_pipeline(xl_pipe, "a red fox", "cat", steps=2).pipeline_kwargs()
    for key, value in zip(("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
                           "negative_pooled_prompt_embeds"), theirs, strict=True):
        assert torch.allclose(ours[key], value, atol=1e-5), key


def test_sdxl_long_weighted_prompt_runs_through_the_pipeline(xl_pipe: Any) -> None:
    long = "(red fox:1.3), " + " ".join(["sky"] * 80) + " BREAK [cat|dog]"
    cond = pe.encode_for_pipeline(xl_pipe, long, "dog", steps=2)
    kwargs = cond.pipeline_kwargs()
    assert kwargs["prompt_embeds"].shape == (1, 231, 64)
    assert kwargs["negative_prompt_embeds"].shape == (1, 231, 64)
    assert cond.tensor_inputs == ["prompt_embeds", "add_text_embeds"]

    def on_step_end(pipe: Any, i: int, _t: Any, step_kwargs: dict) -> dict:
        return cond.step_update(pipe, i, step_kwargs)

    generator = torch.Generator("cpu").manual_seed(3)
    out = xl_pipe(num_inference_steps=2, guidance_scale=5.0, height=32, width=32,
                  generator=generator, output_type="np", callback_on_step_end=on_step_end,
                  callback_on_step_end_tensor_inputs=cond.tensor_inputs, **kwargs)
    assert np.asarray(out.images).shape == (1, 32, 32, 3)
    assert np.isfinite(np.asarray(out.images)).all()
