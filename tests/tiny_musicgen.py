"""A tiny real MusicGen (T5 text encoder, EnCodec codec, decoder LM) built from configs.

Saved with save_pretrained beside a MusicgenProcessor (T5 tokenizer + EnCodec feature
extractor), so tests and benchmarks load it with the app's own loader. Random weights:
the music is noise, but every code path (delay pattern, guidance, streaming decode) is real.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "a", "calm", "piano", "melody", "with", "soft", "drums", "and", "fast", "guitar", "rock",
    "jazz", "sad", "happy", "loud", "quiet", "bass", "synth", "strings", "choir",
)

# Presets: "tiny" for tests; "mini" keeps MusicGen's real 32 kHz EnCodec shape and a
# small decoder (for benchmarks where the codec/decoder cost ratio should be realistic).
PRESETS: dict[str, dict[str, dict]] = {
    "tiny": {
        "codec": dict(sampling_rate=16000, upsampling_ratios=[8, 5, 4, 2], num_filters=4,
                      hidden_size=16, codebook_size=64, num_lstm_layers=1,
                      target_bandwidths=[1.2]),
        "decoder": dict(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, ffn_dim=64),
        "text": dict(d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2),
    },
    "mini": {
        "codec": dict(sampling_rate=32000, upsampling_ratios=[8, 5, 4, 4], num_filters=64,
                      hidden_size=128, codebook_size=2048, num_lstm_layers=2,
                      target_bandwidths=[2.2]),
        "decoder": dict(vocab_size=2048, hidden_size=512, num_hidden_layers=8,
                        num_attention_heads=8, ffn_dim=2048),
        "text": dict(d_model=128, d_kv=32, d_ff=256, num_layers=2, num_heads=4),
    },
    "small": {  # the shapes of facebook/musicgen-small (random weights)
        "codec": dict(sampling_rate=32000, upsampling_ratios=[8, 5, 4, 4], num_filters=64,
                      hidden_size=128, codebook_size=2048, num_lstm_layers=2,
                      target_bandwidths=[2.2]),
        "decoder": dict(vocab_size=2048, hidden_size=1024, num_hidden_layers=24,
                        num_attention_heads=16, ffn_dim=4096),
        "text": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12),
    },
}


def build_tiny_musicgen(folder: Path, *, stereo: bool = False, preset: str = "tiny",
                        seed: int = 0) -> Path:
    """Build, randomise and save a MusicGen + processor in `folder`; returns the folder."""
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
        T5Tokenizer,
    )

    shapes = PRESETS[preset]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("▁" + w, -1.0 - 0.1 * i) for i, w in enumerate(WORDS)]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [("▁", -6.0)]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)

    channels = 2 if stereo else 1
    codebook_size = shapes["codec"]["codebook_size"]
    text = T5Config(vocab_size=max(64, len(vocab)), decoder_start_token_id=0,
                    pad_token_id=0, eos_token_id=1, num_decoder_layers=1, **shapes["text"])
    codec = EncodecConfig(use_causal_conv=False, audio_channels=1, **shapes["codec"])
    decoder = MusicgenDecoderConfig(
        num_codebooks=4 * channels, audio_channels=channels, max_position_embeddings=2048,
        pad_token_id=codebook_size, bos_token_id=codebook_size, **shapes["decoder"],
    )
    config = MusicgenConfig(text_encoder=text, audio_encoder=codec, decoder=decoder)
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(config).eval()
    with torch.no_grad():  # EnCodec starts with all-zero codebooks: give them some spread
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    sampling_defaults(model, codebook_size)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    features = EncodecFeatureExtractor(feature_size=1, sampling_rate=codec.sampling_rate)
    MusicgenProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def sampling_defaults(model, codebook_size: int) -> None:
    """The generation config MusicGen checkpoints ship (start/pad tokens past the codebook,
    sampling with CFG 3), for a tiny model built from a config."""
    gen = model.generation_config
    gen.decoder_start_token_id = codebook_size
    gen.pad_token_id = codebook_size
    gen.bos_token_id = codebook_size
    gen.do_sample = True
    gen.guidance_scale = 3.0
    gen.max_length = 1500


def cached_tiny_musicgen(tmp_path_factory, *, stereo: bool = False) -> Path:
    """One tiny MusicGen per test session (shared by every module that asks for it)."""
    name = "tiny-musicgen-stereo" if stereo else "tiny-musicgen"
    folder = tmp_path_factory.getbasetemp() / "musicgen-models" / name
    if not (folder / "config.json").is_file():
        build_tiny_musicgen(folder, stereo=stereo)
    return folder
