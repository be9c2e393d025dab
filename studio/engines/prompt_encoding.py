"""A1111 prompts to CLIP conditioning, as A1111 computes it, for diffusers pipelines.

Diffusers' own `prompt=` sends `(word:1.2)` to CLIP as literal text and cuts
everything after 77 tokens; imported recipes then render differently from the
picture they came with. This module does what A1111's `sd_hijack_clip` does:

1. the prompt is read by `studio.core.prompts` (LoRA tags out, the per-step
   schedule, the weights of each fragment);
2. each fragment is tokenized alone and the tokens are cut into chunks of 75
   (`prompts.chunk_tokens`: BREAK and the comma backtrack), each chunk becomes
   BOS + 75 tokens (padded with EOS) + EOS, with the tokenizer's pad id after
   the first EOS where it differs from EOS (SD 2.x, SDXL's second encoder);
3. a chunk goes through the text model: SD 1.x/2.x take the last hidden state,
   or with clip skip N the N-th from the end through the final layer norm;
   SDXL takes the penultimate hidden state of each encoder, without the norm,
   and the pooled output of the second encoder's first chunk;
4. weights ("Original" emphasis): `z *= w`, then `z *= mean(z before) / mean(z
   after)`, the means taken over the chunk across all texts of the prompt's
   schedule encoded together, as A1111 batches them;
5. chunks are concatenated along the sequence axis; the prompt and the negative
   (and every scheduled text) are padded to the same number of chunks with the
   empty prompt's conditioning (A1111's "pad prompt/negative prompt" option: a
   diffusers pipeline needs one length; A1111 by default runs them apart).

`encode_for_pipeline` returns a `Conditioning` whose `pipeline_kwargs()` go to
the pipeline call and whose `step_update` swaps the conditioning during the run
for prompt editing and alternation (from `callback_on_step_end`).

Textual-inversion embeddings are used as A1111 uses them: where the tokens of an
embedding's name appear, its vectors take their places (one token per vector), put
into the output of the token-embedding layer during that one encoder call (a forward
hook). The tokenizer and the text encoder are never changed, so a prompt that does
not name an embedding encodes exactly as without it.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from studio.core import prompts
from studio.core.errors import RequestError
from studio.core.prompts import CHUNK_LENGTH, Chunk, Fragment, LoraRef, ParsedPrompt


@dataclass(frozen=True)
class ClipEncoder:
    """One tokenizer + CLIP text model, and how A1111 reads its output."""

    tokenizer: Any
    model: Any
    penultimate: bool = False  # SDXL: hidden_states[-2], no final layer norm
    pooled: bool = False  # the model has a projection and gives `text_embeds`
    # text → text before tokenizing: diffusers' maybe_convert_prompt, which spells a
    # multi-vector textual-inversion token out as its vector tokens
    convert: Callable[[str], str] | None = None
    #: textual-inversion vectors by name ([n, width] each), for this encoder's width
    vectors: Mapping[str, torch.Tensor] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """The width of its token embeddings (768 CLIP ViT-L, 1024 ViT-H, 1280 ViT-bigG)."""
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def bos(self) -> int:
        return int(self.tokenizer.bos_token_id)

    @property
    def eos(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def pad(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.eos if pad is None else int(pad)

    @property
    def comma(self) -> int | None:
        token = self.tokenizer.get_vocab().get(",</w>")
        return None if token is None else int(token)


def encoders_of(pipe: Any) -> list[ClipEncoder]:
    """The CLIP encoders of an SD 1.x/2.x or SDXL pipeline (SDXL: both, in order)."""
    xl = hasattr(pipe, "text_encoder_2")
    found = []
    for tok_name, model_name in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        tokenizer = getattr(pipe, tok_name, None)
        model = getattr(pipe, model_name, None)
        if tokenizer is not None and model is not None:
            pooled = xl and hasattr(model, "text_projection")
            convert = None
            if callable(getattr(pipe, "maybe_convert_prompt", None)):
                def convert(text: str, tokenizer: Any = tokenizer) -> str:
                    return str(pipe.maybe_convert_prompt(text, tokenizer))
            found.append(ClipEncoder(tokenizer, model, penultimate=xl, pooled=pooled,
                                     convert=convert))
    if not found:
        raise RequestError("This pipeline has no CLIP text encoder to read prompts with.")
    return found


#: ids from here up stand for embedding vectors: VECTOR_BASE + name index * MAX_VECTORS + j
VECTOR_BASE = 1 << 40
MAX_VECTORS = 1 << 12


def tokenize(encoder: ClipEncoder, fragments: Sequence[Fragment]) -> list[list[int]]:
    """Each fragment's ids alone, no BOS/EOS (A1111 tokenizes the pieces one by one);
    an embedding's name becomes one placeholder id per vector (see `_substitute`)."""
    texts = [f.text if encoder.convert is None else encoder.convert(f.text) for f in fragments]
    ids = encoder.tokenizer(texts, truncation=False, add_special_tokens=False,
                            verbose=False)["input_ids"]
    rows = [list(map(int, row)) for row in ids]
    if not encoder.vectors:
        return rows
    names = _name_ids(encoder)
    return [_with_vectors(row, names) for row in rows]


def _name_ids(encoder: ClipEncoder) -> list[tuple[list[int], int, int]]:
    """(the name's token ids, its index, its vector count), longest name first."""
    out = []
    for index, (name, vectors) in enumerate(encoder.vectors.items()):
        ids = encoder.tokenizer(name, add_special_tokens=False, verbose=False)["input_ids"]
        if ids:
            out.append((list(map(int, ids)), index, min(int(vectors.shape[0]), MAX_VECTORS)))
    return sorted(out, key=lambda item: -len(item[0]))


def _with_vectors(row: list[int], names: list[tuple[list[int], int, int]]) -> list[int]:
    """A fragment's ids with each embedding name replaced by its placeholder ids."""
    out: list[int] = []
    i = 0
    while i < len(row):
        for ids, index, count in names:
            if row[i:i + len(ids)] == ids:
                out += [VECTOR_BASE + index * MAX_VECTORS + j for j in range(count)]
                i += len(ids)
                break
        else:
            out.append(row[i])
            i += 1
    return out


def _substitute(encoder: ClipEncoder, ids: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Placeholder ids → BOS (a real token that is never the pooled EOS), and a forward
    hook for the token-embedding layer that writes the vectors in their places; None
    when the batch holds no placeholder."""
    where = (ids >= VECTOR_BASE).nonzero().tolist()
    if not where:
        return ids, None
    table = list(encoder.vectors.values())
    fixes = []
    for row, col in where:
        code = int(ids[row, col]) - VECTOR_BASE
        fixes.append((row, col, table[code // MAX_VECTORS][code % MAX_VECTORS]))
    clean = ids.masked_fill(ids >= VECTOR_BASE, encoder.bos)

    def put(_module: Any, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for row, col, vector in fixes:
            output[row, col] = vector.to(device=output.device, dtype=output.dtype)
        return output

    layer = encoder.model.get_input_embeddings()
    return clean, layer.register_forward_hook(put)


def chunks_of(encoder: ClipEncoder, fragments: Sequence[Fragment]) -> tuple[list[Chunk], int]:
    """A text's chunks of at most 75 tokens, and A1111's token count."""
    return prompts.chunk_tokens(tokenize(encoder, fragments), fragments, encoder.comma)


def chunk_ids(encoder: ClipEncoder, chunk: Chunk) -> tuple[list[int], list[float]]:
    """77 ids and weights: BOS, the tokens padded with EOS to 75, EOS; pad after the first EOS."""
    fill = CHUNK_LENGTH - len(chunk.tokens)
    ids = [encoder.bos, *chunk.tokens, *([encoder.eos] * fill), encoder.eos]
    weights = [1.0, *chunk.weights, *([1.0] * fill), 1.0]
    if encoder.pad != encoder.eos:
        first = ids.index(encoder.eos)
        ids[first + 1:] = [encoder.pad] * (len(ids) - first - 1)
    return ids, weights


def _hidden(encoder: ClipEncoder, ids: torch.Tensor, clip_skip: int) -> tuple[torch.Tensor,
                                                                               torch.Tensor | None]:
    model = encoder.model
    ids, hook = _substitute(encoder, ids) if encoder.vectors else (ids, None)
    try:
        out = model(input_ids=ids, output_hidden_states=True)
    finally:
        if hook is not None:
            hook.remove()
    pooled = out.text_embeds if encoder.pooled else None
    if encoder.penultimate:
        return out.hidden_states[-2], pooled
    if clip_skip <= 1:
        return out.last_hidden_state, pooled
    layers = len(out.hidden_states) - 1
    if clip_skip > layers:
        raise RequestError(f"Clip skip {clip_skip} is more than this text encoder's "
                           f"{layers} layers.")
    # transformers 5 puts the norm on the model itself; 4.x under `.text_model`
    norm = getattr(model, "text_model", model).final_layer_norm
    return norm(out.hidden_states[-clip_skip]), pooled


def emphasize(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A1111's "Original" emphasis: scale each token, then restore the batch's mean.

    With every weight 1 this is the identity (A1111's m / m), so it is skipped:
    that also spares a 0 / 0 when a model's outputs average to exactly zero.
    """
    if bool((weights == 1).all()):
        return z
    original_mean = z.mean()
    z = z * weights.reshape((*weights.shape, 1)).to(z.dtype)
    new_mean = z.mean()
    if new_mean == 0:
        return z
    return z * (original_mean / new_mean)


@torch.no_grad()
def encode_texts(encoder: ClipEncoder, texts: Sequence[Sequence[Fragment]], *,
                 clip_skip: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Texts encoded together, as A1111 encodes one prompt's schedule.

    Returns z [len(texts), 77 * chunks, dim] (texts with fewer chunks get empty
    chunks, encoded in the same batch) and the pooled output of chunk 0 (or None).
    """
    per_text = [chunks_of(encoder, fragments)[0] for fragments in texts]
    count = max(len(c) for c in per_text)
    device = encoder.model.device
    zs: list[torch.Tensor] = []
    pooled: torch.Tensor | None = None
    for i in range(count):
        rows = [chunk_ids(encoder, c[i] if i < len(c) else Chunk()) for c in per_text]
        ids = torch.tensor([r[0] for r in rows], dtype=torch.long, device=device)
        weights = torch.tensor([r[1] for r in rows], device=device)
        z, pooled_i = _hidden(encoder, ids, clip_skip)
        zs.append(emphasize(z, weights))
        if i == 0:
            pooled = pooled_i
    return torch.cat(zs, dim=1), pooled


@dataclass
class Encoded:
    """One prompt's schedule: [(end_at_step, embeds [1, L, D], pooled [1, P] | None)]."""

    parsed: ParsedPrompt
    entries: list[tuple[int, torch.Tensor, torch.Tensor | None]]

    def at(self, step_index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        _, embeds, pooled = self.entries[self.parsed.index_at(step_index)]
        return embeds, pooled


def _pad_chunks(z: torch.Tensor, chunks: int, empty: torch.Tensor) -> torch.Tensor:
    """Append copies of the empty prompt's 77 rows until z has `chunks` chunks."""
    missing = chunks - z.shape[1] // empty.shape[1]
    if missing <= 0:
        return z
    return torch.cat([z, empty.expand(z.shape[0], -1, -1).repeat(1, missing, 1)], dim=1)


def _encode_parsed(encoders: Sequence[ClipEncoder], parsed: ParsedPrompt, clip_skip: int,
                   empties: Sequence[torch.Tensor], *,
                   zero: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """z of every encoder (padded to a common chunk count, joined) and the pooled output,
    for all the texts of a prompt's schedule."""
    texts = [entry.fragments for entry in parsed.schedules]
    parts: list[torch.Tensor] = []
    pooled: torch.Tensor | None = None
    for encoder in encoders:
        z, p = encode_texts(encoder, texts, clip_skip=clip_skip)
        if zero:  # SDXL: an empty negative prompt is all zeros (A1111 and diffusers)
            z = torch.zeros_like(z)
            p = None if p is None else torch.zeros_like(p)
        parts.append(z)
        pooled = p if p is not None else pooled
    chunks = max(z.shape[1] for z in parts) // (CHUNK_LENGTH + 2)
    parts = [_pad_chunks(z, chunks, e) for z, e in zip(parts, empties, strict=True)]
    return torch.cat(parts, dim=-1), pooled


@dataclass
class Conditioning:
    """The prompt and negative as pipeline tensors, per step when the prompt is scheduled."""

    positive: Encoded
    negative: Encoded
    xl: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def loras(self) -> tuple[LoraRef, ...]:
        """LoRAs named in the prompt (the negative prompt's tags are words, as in A1111)."""
        return self.positive.parsed.loras

    @property
    def scheduled(self) -> bool:
        return self.positive.parsed.is_scheduled or self.negative.parsed.is_scheduled

    @property
    def chunks(self) -> int:
        return int(self.positive.entries[0][1].shape[1]) // (CHUNK_LENGTH + 2)

    @property
    def tensor_inputs(self) -> list[str]:
        """What `callback_on_step_end_tensor_inputs` must include for `step_update`."""
        if not self.scheduled:
            return []
        return ["prompt_embeds", "add_text_embeds"] if self.xl else ["prompt_embeds"]

    def embeds_at(self, step_index: int) -> dict[str, torch.Tensor]:
        """The four (SD: two) tensors for sampler step `step_index` (from 0)."""
        embeds, pooled = self.positive.at(step_index)
        negative, negative_pooled = self.negative.at(step_index)
        out = {"prompt_embeds": embeds, "negative_prompt_embeds": negative}
        if self.xl and pooled is not None and negative_pooled is not None:
            out["pooled_prompt_embeds"] = pooled
            out["negative_pooled_prompt_embeds"] = negative_pooled
        return out

    def pipeline_kwargs(self, accepted: Container[str] | None = None) -> dict[str, torch.Tensor]:
        """Keyword arguments for the pipeline call (instead of prompt= / negative_prompt=).

        `accepted`: the call's parameter names, to leave out what a pipeline lacks
        (LCM has no negative prompt).
        """
        out = self.embeds_at(0)
        return {k: v for k, v in out.items() if accepted is None or k in accepted}

    def step_update(self, pipe: Any, step_index: int,
                    callback_kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """From callback_on_step_end at the end of step `step_index`: the tensors for the
        next step when the schedule changes there ({} otherwise)."""
        if not self.scheduled:
            return {}
        now, nxt = step_index, step_index + 1
        if (self.positive.parsed.index_at(now) == self.positive.parsed.index_at(nxt)
                and self.negative.parsed.index_at(now) == self.negative.parsed.index_at(nxt)):
            return {}
        cfg = bool(getattr(pipe, "do_classifier_free_guidance", False))
        tensors = self.embeds_at(nxt)
        out: dict[str, torch.Tensor] = {}
        pairs = [("prompt_embeds", "negative_prompt_embeds", "prompt_embeds")]
        if self.xl:
            pairs.append(("pooled_prompt_embeds", "negative_pooled_prompt_embeds",
                          "add_text_embeds"))
        for pos_key, neg_key, name in pairs:
            current = callback_kwargs.get(name)
            if current is None or pos_key not in tensors:
                continue
            per_half = current.shape[0] // (2 if cfg else 1)
            rest = (1,) * (current.dim() - 1)
            value = tensors[pos_key].repeat(per_half, *rest)
            if cfg:
                value = torch.cat([tensors[neg_key].repeat(per_half, *rest), value])
            out[name] = value.to(device=current.device, dtype=current.dtype)
        return out


def with_embeddings(encoders: Sequence[ClipEncoder],
                    embeddings: Mapping[str, Mapping[int, torch.Tensor]]
                    ) -> tuple[list[ClipEncoder], list[str]]:
    """The encoders, each given the vectors of its width from every embedding
    ({name: {width: [n, width]}}), and a note for an embedding that fits none."""
    if not embeddings:
        return list(encoders), []
    out = []
    used: set[str] = set()
    for encoder in encoders:
        width = encoder.width
        vectors = {name: by_width[width] for name, by_width in embeddings.items()
                   if width in by_width}
        used |= set(vectors)
        out.append(replace(encoder, vectors=vectors) if vectors else encoder)
    notes = [f"The embedding {name} is for another model (its vectors are "
             f"{', '.join(str(w) for w in embeddings[name])} wide); it was read as words."
             for name in embeddings if name not in used]
    return out, notes


#: (does it read this pipeline?, its encode_for_pipeline) for pipelines whose text encoder
#: is not CLIP; `engines/sketch_text.py` adds MiniLM's when imported
OTHER_TEXT_ENCODERS: list[tuple[Callable[[Any], bool], Callable[..., Conditioning]]] = []


def encode_for_pipeline(pipe: Any, prompt: str, negative: str = "", *, steps: int,
                        clip_skip: int = 1, old_scheduling: bool = False,
                        embeddings: Mapping[str, Mapping[int, torch.Tensor]] | None = None,
                        ) -> Conditioning:
    """Encode a prompt and its negative for `pipe` as A1111 would.

    clip_skip counts as A1111 does (1 = the last layer; SDXL ignores it, as A1111
    does by default). `embeddings` ({name: {width: vectors}}) are used where the
    texts name them. Raises PromptError for a LoRA weight that is not a number;
    syntax mistakes come back as `warnings`.
    """
    for reads, encode in OTHER_TEXT_ENCODERS:  # not CLIP (the sketch model's MiniLM)
        if reads(pipe):
            return encode(pipe, prompt, negative, steps=steps)
    encoders, embedding_notes = with_embeddings(encoders_of(pipe), embeddings or {})
    xl = hasattr(pipe, "text_encoder_2")
    parsed_pos = prompts.parse(prompt, steps, old_scheduling=old_scheduling)
    parsed_neg = prompts.parse(negative, steps, old_scheduling=old_scheduling, negative=True)
    empty_parsed = prompts.parse("", steps)
    empties = [encode_texts(e, [empty_parsed.fragments], clip_skip=clip_skip)[0]
               for e in encoders]
    empty = torch.cat(empties, dim=-1)
    pos_z, pos_pooled = _encode_parsed(encoders, parsed_pos, clip_skip, empties, zero=False)
    zero = xl and all(entry.text == "" for entry in parsed_neg.schedules)
    neg_z, neg_pooled = _encode_parsed(encoders, parsed_neg, clip_skip, empties, zero=zero)
    chunks = max(pos_z.shape[1], neg_z.shape[1]) // empty.shape[1]
    pos_z, neg_z = _pad_chunks(pos_z, chunks, empty), _pad_chunks(neg_z, chunks, empty)

    def entries(parsed: ParsedPrompt, z: torch.Tensor, pooled: torch.Tensor | None
                ) -> list[tuple[int, torch.Tensor, torch.Tensor | None]]:
        return [(s.end_at_step, z[i:i + 1], None if pooled is None else pooled[i:i + 1])
                for i, s in enumerate(parsed.schedules)]

    warnings = list(parsed_pos.warnings)
    warnings += [f"Negative prompt: {w}" for w in parsed_neg.warnings]
    warnings += embedding_notes
    return Conditioning(Encoded(parsed_pos, entries(parsed_pos, pos_z, pos_pooled)),
                        Encoded(parsed_neg, entries(parsed_neg, neg_z, neg_pooled)),
                        xl, warnings)


def count_tokens(tokenizer: Any, prompt: str, steps: int = prompts.DEFAULT_STEPS
                 ) -> tuple[int, int]:
    """(tokens, chunk limit) for the prompt box, as A1111's counter: LoRA tags out,
    the longest of the scheduled texts, limit = the next multiple of 75."""
    text = prompts.strip_networks(prompt)
    schedule, _ = prompts.prompt_schedule(text, steps)
    encoder = ClipEncoder(tokenizer, None)
    most = 0
    for _, scheduled in schedule:
        fragments, _ = prompts.parse_attention(scheduled)
        most = max(most, chunks_of(encoder, fragments)[1])
    return most, prompts.chunk_limit(most)
