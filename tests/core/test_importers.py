"""Recipes of other apps, read from files the tests write in each format with Pillow."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.core import metadata
from studio.core.formats import importers, png
from studio.core.formats.png import read_recipe
from studio.core.requests import SCHEDULES, ImageRequest
from studio.core.seeds import MAX_SEED

A1111_TEXT = (
    "a lighthouse, (stormy sea:1.2)\nNegative prompt: blurry\n"
    "Steps: 22, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6, Seed: 4242, "
    "Size: 512x768, Model: dreamshaper_8"
)
BIG_SEED = 18446744073709551615  # 2**64 - 1, as ComfyUI and Fooocus allow


def save_png(path: Path, texts: dict[str, str], image: Image.Image | None = None) -> Path:
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    (image or Image.new("RGB", (32, 24), (9, 9, 9))).save(path, pnginfo=info)
    return path


def expected_seed(seed: int) -> int:
    """What a seed becomes today: itself within range, else folded (exactly, not via float)."""
    return seed if seed <= MAX_SEED else seed % (MAX_SEED + 1)


# ─── InvokeAI 2.x ─────────────────────────────────────────────────────────────────────

SD_METADATA = {
    "model": "stable diffusion", "model_weights": "stable-diffusion-1.5",
    "model_hash": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
    "app_id": "invoke-ai/InvokeAI", "app_version": "2.2.5",
    "image": {"prompt": [{"prompt": "a tabby cat, sunlight [blurry, dog]", "weight": 1.0}],
              "steps": 40, "cfg_scale": 7.5, "threshold": 0, "perlin": 0, "height": 512,
              "width": 768, "seed": 3357757885, "seamless": False, "hires_fix": False,
              "type": "txt2img", "postprocessing": None, "sampler": "k_euler_a",
              "variations": []},
}


def test_invokeai2_sd_metadata(tmp_path: Path) -> None:
    path = save_png(tmp_path / "000001.3357757885.png",
                    {"sd-metadata": json.dumps(SD_METADATA),
                     "Dream": '"a tabby cat, sunlight [blurry, dog]" -s 40 -S 3357757885'})
    recipe = read_recipe(path)
    assert recipe.source == "invokeai" and recipe.notes == []
    assert recipe.to_request() == ImageRequest(
        model="stable-diffusion-1.5", prompt="a tabby cat, sunlight", negative="blurry, dog",
        seed=3357757885, steps=40, guidance=7.5, width=768, height=512, scheduler="Euler a")


def test_invokeai2_sd_metadata_img2img_and_extras_are_noted(tmp_path: Path) -> None:
    meta = json.loads(json.dumps(SD_METADATA))
    meta["image"].update({"type": "img2img", "init_image_path": "in.png", "seamless": True,
                          "variations": [[123, 0.1]], "sampler": "k_heun",
                          "prompt": "old 2.0 style prompt"})
    recipe = read_recipe(save_png(tmp_path / "i.png", {"sd-metadata": json.dumps(meta)}))
    assert recipe.request["prompt"] == "old 2.0 style prompt"
    assert any("img2img" in n for n in recipe.notes)
    assert any("seed variations" in n and "seamless tiling" in n for n in recipe.notes)
    # Heun has no equivalent yet: the note names it (and names it no more once it has)
    scheduler = recipe.request["scheduler"]
    assert scheduler in metadata.TO_A1111
    if scheduler != "Heun":
        assert any("Heun" in n for n in recipe.notes)


def test_invokeai2_dream_text_alone(tmp_path: Path) -> None:
    dream = ('"a castle, (towers)1.2 [fog]" -s 30 -S 77 -W 640 -H 448 -C 8.5 -A k_lms '
             '-I init.png -f 0.6')
    recipe = read_recipe(save_png(tmp_path / "d.png", {"Dream": dream}))
    assert recipe.source == "invokeai"
    request = recipe.request
    assert (request["prompt"], request["negative"]) == ("a castle, (towers)1.2", "fog")
    assert (request["steps"], request["seed"], request["guidance"]) == (30, 77, 8.5)
    assert (request["width"], request["height"]) == (640, 448)
    assert any("img2img" in n for n in recipe.notes)
    assert any("InvokeAI's own weighting syntax" in n for n in recipe.notes)


# ─── NovelAI ──────────────────────────────────────────────────────────────────────────

NAI_COMMENT = {
    "prompt": "1girl, {{silver hair}}, [simple background], (smile)", "steps": 28,
    "height": 832, "width": 1216, "scale": 5.0, "uncond_scale": 1.0, "cfg_rescale": 0,
    "seed": 1534874103, "n_samples": 1, "noise_schedule": "karras",
    "sampler": "k_euler_ancestral", "sm": False, "sm_dyn": False,
    "uc": "lowres, {bad anatomy}",
}
NAI_TEXTS = {
    "Title": "AI generated image",
    "Description": "1girl, {{silver hair}}, [simple background], (smile)",
    "Software": "NovelAI", "Source": "NovelAI Diffusion V3 7BCCAA2C",
    "Generation time": "6.1", "Comment": json.dumps(NAI_COMMENT),
}


def test_novelai_png(tmp_path: Path) -> None:
    recipe = read_recipe(save_png(tmp_path / "nai.png", NAI_TEXTS))
    assert recipe.source == "novelai"
    request = recipe.request
    assert request["prompt"] == (
        "1girl, (silver hair:1.1025), (simple background:0.9524), \\(smile\\)")
    assert request["negative"] == "lowres, (bad anatomy:1.05)"
    assert (request["seed"], request["steps"], request["guidance"]) == (1534874103, 28, 5.0)
    assert (request["width"], request["height"]) == (1216, 832)
    assert request["model"] == "NovelAI Diffusion V3 7BCCAA2C"
    assert request["scheduler"] == "Euler a"
    assert any("emphasis was converted" in n for n in recipe.notes)
    assert any("NovelAI's servers" in n for n in recipe.notes)
    assert any("Karras" in n for n in recipe.notes)  # not for Euler a here


def test_novelai_emphasis_conversion() -> None:
    assert importers.novelai_to_a1111("plain words") == ("plain words", False)
    assert importers.novelai_to_a1111("{a} b [[c]]") == ("(a:1.05) b (c:0.907)", True)


def test_novelai_extras_are_noted(tmp_path: Path) -> None:
    comment = dict(NAI_COMMENT, sm=True, cfg_rescale=0.4,
                   v4_prompt={"caption": {"base_caption": "x",
                                          "char_captions": [{"char_caption": "girl"}]}})
    texts = dict(NAI_TEXTS, Comment=json.dumps(comment))
    recipe = read_recipe(save_png(tmp_path / "v4.png", texts))
    assert any("SMEA" in n and "CFG rescale" in n for n in recipe.notes)
    assert any("several characters" in n for n in recipe.notes)


# ─── stealth PNG info (A1111 extension, NovelAI) ──────────────────────────────────────


def hide(pixels: np.ndarray, payload: bytes, signature: bytes, *, alpha: bool) -> np.ndarray:
    """Write signature + bit count + payload into the low bits, column by column."""
    data = signature + (len(payload) * 8).to_bytes(4, "big") + payload
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    out = pixels.copy()
    plane = out[..., 3:4] if alpha else out[..., :3]
    columns = plane.transpose(1, 0, 2).reshape(-1).copy()
    assert bits.size <= columns.size
    columns[:bits.size] = (columns[:bits.size] & 0xFE) | bits
    plane[...] = columns.reshape(plane.shape[1], plane.shape[0], plane.shape[2]).transpose(
        1, 0, 2)
    return out


def _pixels(mode: str, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    rng = np.random.default_rng(1)
    channels = 4 if mode == "RGBA" else 3
    return rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)


@pytest.mark.parametrize("compressed", [False, True])
def test_a1111_stealth_in_the_alpha_channel(tmp_path: Path, compressed: bool) -> None:
    payload = A1111_TEXT.encode()
    signature = b"stealth_pngcomp" if compressed else b"stealth_pnginfo"
    if compressed:
        payload = gzip.compress(payload)
    pixels = hide(_pixels("RGBA"), payload, signature, alpha=True)
    path = tmp_path / "stealth.png"
    Image.fromarray(pixels, "RGBA").save(path)
    recipe = read_recipe(path)
    assert recipe.source == "a1111" and recipe.parameters == A1111_TEXT
    assert recipe.to_request() == ImageRequest(
        model="dreamshaper_8", prompt="a lighthouse, (stormy sea:1.2)", negative="blurry",
        seed=4242, steps=22, guidance=6.0, width=512, height=768, scheduler="DPM++ 2M",
        schedule="Karras")
    assert "stealth" in recipe.notes[0] and recipe.raw["stealth"] == ["parameters"]


def test_stealth_in_rgb_and_in_lossless_webp(tmp_path: Path) -> None:
    pixels = hide(_pixels("RGB"), gzip.compress(A1111_TEXT.encode()), b"stealth_rgbcomp",
                  alpha=False)
    path = tmp_path / "rgb.png"
    Image.fromarray(pixels, "RGB").save(path)
    assert read_recipe(path).request["seed"] == 4242
    webp = tmp_path / "rgb.webp"
    Image.fromarray(pixels, "RGB").save(webp, lossless=True)
    assert read_recipe(webp).request["seed"] == 4242


def test_novelai_stealth_json(tmp_path: Path) -> None:
    payload = gzip.compress(json.dumps(NAI_TEXTS).encode())
    pixels = hide(_pixels("RGBA", (96, 80)), payload, b"stealth_pngcomp", alpha=True)
    path = tmp_path / "nai-stripped.png"
    Image.fromarray(pixels, "RGBA").save(path)  # the text chunks were stripped
    recipe = read_recipe(path)
    assert recipe.source == "novelai" and recipe.request["seed"] == 1534874103


def test_text_chunks_win_over_stealth_and_damage_is_one_sentence(tmp_path: Path) -> None:
    pixels = hide(_pixels("RGBA"), b"Steps: 1, Seed: 1, Sampler: Euler", b"stealth_pnginfo",
                  alpha=True)
    path = save_png(tmp_path / "both.png", {"parameters": A1111_TEXT},
                    Image.fromarray(pixels, "RGBA"))
    assert read_recipe(path).request["seed"] == 4242
    broken = hide(_pixels("RGBA"), b"x" * 4, b"stealth_pnginfo", alpha=True)
    broken[0, 3, 3] ^= 1  # the top bit of the length (bit 120): it no longer fits
    bad = tmp_path / "bad.png"
    Image.fromarray(broken, "RGBA").save(bad)
    with pytest.raises(png.RecipeError, match="holds no recipe"):
        read_recipe(bad)
    plain = tmp_path / "plain.png"
    Image.fromarray(_pixels("RGBA"), "RGBA").save(plain)
    assert png.read_stealth_texts(plain) == {}


# ─── A1111 JPEG / WebP ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("WEBP", ".webp")])
def test_a1111_exif_user_comment_unicode(tmp_path: Path, fmt: str, suffix: str) -> None:
    text = A1111_TEXT.replace("a lighthouse", "灯台と嵐の海")
    exif = Image.Exif()
    exif.get_ifd(png.EXIF_IFD)[png.USER_COMMENT] = b"UNICODE\0" + text.encode("utf-16-be")
    path = tmp_path / f"a{suffix}"
    Image.new("RGB", (64, 48), (5, 6, 7)).save(path, format=fmt, exif=exif)
    recipe = read_recipe(path)
    assert recipe.source == "a1111" and recipe.request["prompt"].startswith("灯台と嵐の海")
    assert recipe.request["seed"] == 4242 and recipe.raw["format"] == fmt


# ─── ComfyUI ──────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("sampler", sorted(importers.COMFY_SAMPLERS))
def test_every_comfy_sampler_has_a_studio_equivalent(sampler: str) -> None:
    for schedule in importers.COMFY_SCHEDULES:
        notes: list[str] = []
        ours = importers.comfy_scheduler(sampler, schedule, notes)
        assert ours[0] in metadata.TO_A1111 and ours[1] in SCHEDULES
        assert all(n.endswith(".") and "\n" not in n for n in notes)
        a1111, change = importers.COMFY_SAMPLERS[sampler]
        if change:
            assert any(change in n for n in notes)
        exact = metadata.a1111_sampling(a1111, importers.COMFY_SCHEDULES[schedule])
        assert ours == exact[:2]


@pytest.mark.parametrize("sampler, schedule, expected, noted", [
    ("euler", "normal", ("Euler", "Automatic"), False),
    ("euler_ancestral", "sgm_uniform", ("Euler a", "SGM Uniform"), False),
    ("dpmpp_2m", "karras", ("DPM++ 2M", "Karras"), False),
    ("dpmpp_2m", "simple", ("DPM++ 2M", "Automatic"), False),
    ("dpmpp_2m_sde_gpu", "karras", ("DPM++ 2M SDE", "Karras"), True),
    ("dpmpp_3m_sde", "exponential", ("DPM++ 3M SDE", "Exponential"), False),
    ("dpmpp_sde", "karras", ("DPM++ SDE", "Karras"), False),
    ("heun", "normal", ("Heun", "Automatic"), False),
    ("lms", "karras", ("LMS", "Karras"), False),
    ("dpm_2_ancestral", "sgm_uniform", ("DPM2 a", "SGM Uniform"), False),
    ("uni_pc_bh2", "normal", ("UniPC", "Automatic"), False),
    ("ddim", "ddim_uniform", ("DDIM", "Automatic"), False),
    ("lcm", "sgm_uniform", ("LCM", "SGM Uniform"), False),
    ("euler_cfg_pp", "normal", ("Euler", "Automatic"), True),
    ("deis", "karras", ("DPM++ 2M", "Karras"), True),
    ("euler", "exponential", ("Euler", "Exponential"), False),
    ("euler", "no_such_schedule", ("Euler", "Automatic"), True),
    ("no_such_sampler", "normal", ("Euler a", "Automatic"), True),
])
def test_comfy_sampler_names(sampler: str, schedule: str, expected: str, noted: bool) -> None:
    notes: list[str] = []
    assert importers.comfy_scheduler(sampler, schedule, notes) == expected
    assert bool(notes) == noted


def _comfy(positive: dict[str, dict], seed: object = 8566257) -> dict[str, dict]:
    graph: dict[str, dict] = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": 20, "cfg": 7, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.ckpt"}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"batch_size": 1, "height": 512, "width": 512}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "blurry"}},
    }
    graph.update(positive)
    return graph


def test_multi_area_comfy_prompts_are_noted(tmp_path: Path) -> None:
    areas = {
        "6": {"class_type": "ConditioningCombine", "inputs": {
            "conditioning_1": ["10", 0], "conditioning_2": ["11", 0]}},
        "10": {"class_type": "ConditioningSetArea", "inputs": {
            "conditioning": ["12", 0], "width": 256, "height": 512, "x": 0, "y": 0,
            "strength": 1}},
        "11": {"class_type": "ConditioningSetArea", "inputs": {
            "conditioning": ["13", 0], "width": 256, "height": 512, "x": 256, "y": 0,
            "strength": 1}},
        "12": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "a fox"}},
        "13": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "a cat"}},
    }
    recipe = read_recipe(save_png(tmp_path / "areas.png", {"prompt": json.dumps(_comfy(areas))}))
    assert recipe.source == "comfyui" and recipe.request["prompt"] in ("a fox", "a cat")
    assert recipe.request["negative"] == "blurry"
    [note] = [n for n in recipe.notes if "several prompts" in n]
    assert "ConditioningCombine" in note and "ConditioningSetArea" in note
    one = {"6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "a fox"}}}
    assert read_recipe(save_png(tmp_path / "one.png",
                                {"prompt": json.dumps(_comfy(one))})).notes == []


# ─── 64-bit seeds ─────────────────────────────────────────────────────────────────────


def test_a_64_bit_seed_is_read_exactly(tmp_path: Path) -> None:
    assert metadata.as_int(str(BIG_SEED)) == BIG_SEED
    assert metadata.as_int(BIG_SEED) == BIG_SEED
    assert metadata.as_int("1e3") == 1000 and metadata.as_int("1.5") is None
    one = {"6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "a fox"}}}
    comfy = read_recipe(save_png(tmp_path / "c.png",
                                 {"prompt": json.dumps(_comfy(one, seed=BIG_SEED))}))
    # through float() the seed would have become 2**64 and folded to 0
    assert comfy.request["seed"] == expected_seed(BIG_SEED) != 0
    text = A1111_TEXT.replace("Seed: 4242", f"Seed: {BIG_SEED}")
    a1111 = read_recipe(save_png(tmp_path / "a.png", {"parameters": text}))
    assert a1111.request["seed"] == expected_seed(BIG_SEED)
    if BIG_SEED > MAX_SEED:
        assert any(str(BIG_SEED) in n for n in comfy.notes + a1111.notes)


# ─── ComfyUI's VAELoader ──────────────────────────────────────────────────────────────

def _with_vae(vae_name: object, decode_from: str = "40") -> dict[str, dict]:
    one = {"6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "a fox"}},
           "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0],
                                                      "vae": [decode_from, 0]}},
           "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}},
           "40": {"class_type": "VAELoader", "inputs": {"vae_name": vae_name}}}
    return _comfy(one)


def test_a_comfy_vaeloader_selects_that_vae(tmp_path: Path) -> None:
    """The VAELoader feeding the picture's VAEDecode names the VAE, as A1111's `VAE:` does:
    the recipe carries its file name and the VAE folders resolve it to the file."""
    from studio.core import vaes
    from studio.core.settings import Settings

    graph = _with_vae("sd15\\vae-ft-mse-840000-ema-pruned.safetensors")  # a Windows subfolder
    graph["41"] = {"class_type": "VAELoader", "inputs": {"vae_name": "other.safetensors"}}
    graph["42"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["9", 0], "vae": ["41", 0]}}
    recipe = read_recipe(save_png(tmp_path / "c.png", {"prompt": json.dumps(graph)}))
    assert recipe.source == "comfyui" and recipe.notes == []
    assert recipe.request["vae"] == "vae-ft-mse-840000-ema-pruned.safetensors"
    assert recipe.to_request().vae == "vae-ft-mse-840000-ema-pruned.safetensors"
    models = tmp_path / "models"
    (models / "VAE").mkdir(parents=True)
    wanted = models / "VAE" / "vae-ft-mse-840000-ema-pruned.safetensors"
    wanted.write_bytes(b"")
    assert vaes.find_vae(recipe.request["vae"], Settings(model_dirs=[str(models)])) == wanted
    # the same as A1111's infotext gives
    a1111 = metadata.infotext_to_request_dict(
        {"Prompt": "a fox", "VAE": "vae-ft-mse-840000-ema-pruned.safetensors"})
    assert a1111["vae"] == recipe.request["vae"]


def test_the_vae_is_read_from_a_ui_workflow_too(tmp_path: Path) -> None:
    workflow = {
        "nodes": [
            {"id": 3, "type": "KSampler",
             "inputs": [{"name": "model", "link": 1}, {"name": "latent_image", "link": 2}],
             "widgets_values": [7, "fixed", 20, 7, "euler", "normal", 1]},
            {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["sd15.safetensors"]},
            {"id": 5, "type": "EmptyLatentImage", "widgets_values": [512, 512, 1]},
            {"id": 8, "type": "VAEDecode",
             "inputs": [{"name": "samples", "link": 3}, {"name": "vae", "link": 4}]},
            {"id": 10, "type": "VAELoader", "widgets_values": ["kl-f8-anime2.ckpt"]},
        ],
        "links": [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"],
                  [3, 3, 0, 8, 0, "LATENT"], [4, 10, 0, 8, 1, "VAE"]],
    }
    recipe = read_recipe(save_png(tmp_path / "w.png", {"workflow": json.dumps(workflow)}))
    assert recipe.request["vae"] == "kl-f8-anime2.ckpt"
    assert recipe.request["model"] == "sd15.safetensors"


@pytest.mark.parametrize(("vae_name", "noted"), [
    ("taesd", True),  # ComfyUI's fast approximation: the model's own VAE, with a note
    ("Baked VAE", False),  # a loader pack's name for the checkpoint's own
    ("", False),
])
def test_a_vae_that_is_not_a_file_keeps_the_models_own(tmp_path: Path, vae_name: str,
                                                       noted: bool) -> None:
    recipe = read_recipe(save_png(tmp_path / "c.png",
                                  {"prompt": json.dumps(_with_vae(vae_name))}))
    assert "vae" not in recipe.request
    assert any("approximation" in n for n in recipe.notes) == noted


def test_the_checkpoints_own_vae_sets_none(tmp_path: Path) -> None:
    graph = _with_vae("unused.safetensors", decode_from="4")  # decoded by the checkpoint's
    recipe = read_recipe(save_png(tmp_path / "c.png", {"prompt": json.dumps(graph)}))
    assert "vae" not in recipe.request and recipe.notes == []
