"""A tiny real MusicGen-Melody (T5 text encoder, EnCodec codec, decoder LM with a chroma
prefix) built from configs, saved with save_pretrained beside its T5 tokenizer and a
preprocessor_config.json with the chroma settings (its feature extractor class needs
torchaudio, so it is written as the JSON a real melody model ships). Random weights:
the music is noise, but the chroma conditioning path is real.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.tiny_musicgen import PRESETS, WORDS, sampling_defaults

#: the chroma settings of the tiny model (16 kHz like its codec; small windows)
CHROMA = {"sampling_rate": 16000, "n_fft": 2048, "hop_length": 512, "num_chroma": 12,
          "chunk_length": 30}


def build_tiny_musicgen_melody(folder: Path, *, seed: int = 0) -> Path:
    """Build, randomise and save a MusicGen-Melody in `folder`; returns the folder."""
    import torch
    from transformers import (
        EncodecConfig,
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
        T5Config,
        T5Tokenizer,
    )

    shapes = PRESETS["tiny"]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("▁" + w, -1.0 - 0.1 * i) for i, w in enumerate(WORDS)]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [("▁", -6.0)]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    codebook_size = shapes["codec"]["codebook_size"]
    text = T5Config(vocab_size=max(64, len(vocab)), decoder_start_token_id=0,
                    pad_token_id=0, eos_token_id=1, num_decoder_layers=1, **shapes["text"])
    codec = EncodecConfig(use_causal_conv=False, audio_channels=1, **shapes["codec"])
    decoder = MusicgenMelodyDecoderConfig(
        num_codebooks=4, audio_channels=1, max_position_embeddings=2048,
        pad_token_id=codebook_size, bos_token_id=codebook_size, **shapes["decoder"],
    )
    config = MusicgenMelodyConfig(text_encoder=text, audio_encoder=codec, decoder=decoder,
                                  num_chroma=12, chroma_length=64)
    torch.manual_seed(seed)
    model = MusicgenMelodyForConditionalGeneration(config).eval()
    with torch.no_grad():  # EnCodec starts with all-zero codebooks: give them some spread
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
        # a strong melody projection, so that the reference audibly steers the random model
        model.audio_enc_to_dec_proj.weight.normal_(0.0, 2.0)
        for head in model.decoder.lm_heads:  # peaked token distributions: sampling follows
            head.weight.mul_(8.0)
    sampling_defaults(model, codebook_size)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "MusicgenMelodyFeatureExtractor", "feature_size": 12,
        "padding_value": 0.0, "return_attention_mask": False, "stem_indices": [3, 2],
        **CHROMA}), encoding="utf-8")
    return folder


def cached_tiny_musicgen_melody(tmp_path_factory) -> Path:
    """One tiny MusicGen-Melody per test session."""
    folder = tmp_path_factory.getbasetemp() / "musicgen-models" / "tiny-musicgen-melody"
    if not (folder / "config.json").is_file():
        build_tiny_musicgen_melody(folder)
    return folder
