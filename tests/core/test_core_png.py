"""PNG outputs carry parameters/studio/XMP chunks; recipes read back from us and other apps."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.core import metadata
from studio.core.errors import RecipeError, StudioError
from studio.core.formats import png
from studio.core.formats.png import read_recipe, save_images
from studio.core.requests import ImageRequest, Request
from studio.core.results import Result

REQUEST = ImageRequest(
    model="/models/dreamshaper_8.safetensors",
    prompt="a lighthouse at dusk, 灯台, 🌅",
    negative="people, text",
    seed=1000,
    steps=12,
    guidance=6.5,
    width=64,
    height=96,
    scheduler="DPM++ 2M Karras",
    batch_size=3,
)


def _images(n: int, h: int = 96, w: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def chunk_types(path: Path) -> list[tuple[str, str]]:
    """(chunk type, keyword) for every text chunk, read straight from the bytes."""
    data = path.read_bytes()
    assert data[:8] == png.PNG_SIGNATURE
    pos, found = 8, []
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            found.append((ctype.decode(), body.split(b"\0", 1)[0].decode("latin-1")))
        pos += 12 + length
    return found


def save_png(path: Path, texts: dict[str, str], size: tuple[int, int] = (32, 48)) -> Path:
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", size, (10, 20, 30)).save(path, pnginfo=info)
    return path


# ─── our own outputs ──────────────────────────────────────────────────────────────────


def test_save_images_writes_one_png_per_image_with_per_image_seeds(tmp_path: Path) -> None:
    images = _images(3)
    paths = save_images(Result(request=REQUEST, modality="image", images=images), tmp_path)
    assert len(paths) == 3
    assert [p.name.split("-")[:2] for p in paths] == [
        ["00001", "1000"], ["00002", "1001"], ["00003", "1002"]]
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            assert im.size == (64, 96)
            assert np.array_equal(np.asarray(im.convert("RGB")), images[i])
            assert {"parameters", "studio", "XML:com.adobe.xmp"} <= set(im.info)
        recipe = read_recipe(path)
        assert recipe.source == "studio" and recipe.modality == "image"
        expected = REQUEST.replace(seed=1000 + i, batch_size=1)
        assert recipe.to_request() == expected
        assert f"Seed: {1000 + i}," in recipe.parameters
        assert recipe.raw["size"] == [64, 96]


def test_chunk_kinds_latin1_is_text_and_unicode_is_itxt(tmp_path: Path) -> None:
    latin = REQUEST.replace(prompt="café au lait", negative="", batch_size=1)
    [plain] = save_images(Result(request=latin, modality="image", images=_images(1)), tmp_path)
    assert chunk_types(plain) == [("tEXt", "parameters"), ("tEXt", "studio"),
                                  ("iTXt", "XML:com.adobe.xmp")]
    [uni] = save_images(Result(request=REQUEST, modality="image", images=_images(1)), tmp_path)
    assert chunk_types(uni) == [("iTXt", "parameters"), ("iTXt", "studio"),
                                ("iTXt", "XML:com.adobe.xmp")]


def test_chunk_contents(tmp_path: Path) -> None:
    result = Result(request=REQUEST.replace(batch_size=2), modality="image", images=_images(2),
                    info={"seeds": [7, 99], "model_hash": "abc123", "latents": np.zeros(4),
                          "it_per_s": 3.5})
    first, second = save_images(result, tmp_path)
    assert second.name.startswith("00002-99-")
    with Image.open(second) as im:
        info = dict(im.info)
    assert info["parameters"] == (
        "a lighthouse at dusk, 灯台, 🌅\nNegative prompt: people, text\n"
        "Steps: 12, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 99, "
        "Size: 64x96, Model hash: abc123, Model: dreamshaper_8.safetensors, "
        f"Version: {metadata.app_version()}"
    )
    record = json.loads(info["studio"])
    assert record["modality"] == "image"
    assert record["app_version"] == metadata.__version__
    assert record["request"] == REQUEST.replace(seed=99, batch_size=1).to_dict()
    assert record["batch"] == {"index": 1, "size": 2, "seed": 1000}
    assert record["info"] == {"seeds": [7, 99], "model_hash": "abc123", "it_per_s": 3.5}
    xmp = info["XML:com.adobe.xmp"]
    root = ET.fromstring(xmp.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    desc = root.find("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF/"
                     "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    assert desc is not None
    assert desc.get("{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType") == (
        metadata.DIGITAL_SOURCE_TYPE)
    assert REQUEST.prompt in xmp
    assert read_recipe(first).request["seed"] == 7


def test_variation_seeds_per_image(tmp_path: Path) -> None:
    request = REQUEST.replace(batch_size=2, variation_seed=50, variation_strength=0.3)
    paths = save_images(Result(request=request, modality="image", images=_images(2)), tmp_path)
    seeds = [(read_recipe(p).request["seed"], read_recipe(p).request["variation_seed"])
             for p in paths]
    assert seeds == [(1000, 50), (1001, 51)]
    assert "Variation seed: 51, Variation seed strength: 0.3" in read_recipe(paths[1]).parameters


def test_single_image_and_builtin_model(tmp_path: Path) -> None:
    request = ImageRequest(model="builtin:faces", prompt="", seed=5, width=64, height=64)
    [path] = save_images(Result(request=request, modality="image", images=_images(1, 64, 64)),
                         tmp_path)
    assert path.name.endswith("-5-untitled.png")
    recipe = read_recipe(path)
    assert 'Model: "builtin:faces"' in recipe.parameters
    assert recipe.to_request() == request


def test_grey_and_rgba_arrays_are_saved(tmp_path: Path) -> None:
    grey = np.zeros((64, 64), np.uint8)
    rgba = np.zeros((64, 64, 4), np.uint8)
    paths = save_images(Result(request=REQUEST, modality="image", images=[grey, rgba]),
                        tmp_path)
    modes = []
    for p in paths:
        with Image.open(p) as im:
            modes.append(im.mode)
    assert modes == ["L", "RGBA"]


def test_bad_arrays_write_nothing(tmp_path: Path) -> None:
    good = _images(1)[0]
    bad = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(StudioError, match=r"Picture 2 is not 8-bit \(float32\)"):
        save_images(Result(request=REQUEST, modality="image", images=[good, bad]), tmp_path)
    with pytest.raises(StudioError, match="unexpected shape"):
        save_images(Result(request=REQUEST, modality="image",
                           images=[np.zeros((2, 2, 2, 2), np.uint8)]), tmp_path)
    assert list(tmp_path.rglob("*.png")) == []


def test_no_images_no_files(tmp_path: Path) -> None:
    assert save_images(Result(request=REQUEST, modality="image"), tmp_path) == []


# ─── A1111 and friends ────────────────────────────────────────────────────────────────

A1111_TEXT = (
    "portrait of a knight, detailed armor\n"
    "Negative prompt: blurry\n"
    "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 123456, "
    "Size: 512x704, Model hash: e6bb9ea85b, Model: realisticVision_v51, Version: v1.10.1"
)


def test_a1111_png(tmp_path: Path) -> None:
    path = save_png(tmp_path / "00001-123456.png", {"parameters": A1111_TEXT})
    recipe = read_recipe(path)
    assert recipe.source == "a1111" and recipe.parameters == A1111_TEXT
    assert recipe.notes == []
    assert recipe.raw["a1111"]["Model hash"] == "e6bb9ea85b"
    request = recipe.to_request()
    assert request == ImageRequest(
        model="realisticVision_v51", prompt="portrait of a knight, detailed armor",
        negative="blurry", seed=123456, steps=25, guidance=6.5, width=512, height=704,
        scheduler="DPM++ 2M", schedule="Karras")


def test_a1111_itxt_and_ztxt_chunks(tmp_path: Path) -> None:
    text = A1111_TEXT.replace("portrait of a knight", "騎士の肖像")
    info = PngInfo()
    info.add_itxt("parameters", text, zip=True)
    path = tmp_path / "i.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    assert read_recipe(path).request["prompt"].startswith("騎士の肖像")
    info = PngInfo()
    info.add_text("parameters", A1111_TEXT, zip=True)  # Latin-1 + zip → zTXt
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    assert chunk_types(path) == [("zTXt", "parameters")]
    assert read_recipe(path).request["seed"] == 123456


def test_a1111_unknown_sampler_is_noted(tmp_path: Path) -> None:
    text = A1111_TEXT.replace("Sampler: DPM++ 2M, Schedule type: Karras", "Sampler: DPM fast")
    recipe = read_recipe(save_png(tmp_path / "h.png", {"parameters": text}))
    assert recipe.request["scheduler"] == "Euler a"
    assert any("DPM fast" in n for n in recipe.notes)
    assert "notes" not in recipe.request


COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 8566257, "steps": 20, "cfg": 8, "sampler_name": "dpmpp_2m",
        "scheduler": "karras", "denoise": 1, "model": ["4", 0], "positive": ["6", 0],
        "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple",
          "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage",
          "inputs": {"batch_size": 1, "height": 512, "width": 768}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {
        "clip": ["4", 1], "text": "beautiful scenery nature glass bottle landscape"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "text, watermark"}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}


def test_comfyui_api_prompt(tmp_path: Path) -> None:
    path = save_png(tmp_path / "ComfyUI_00001_.png", {"prompt": json.dumps(COMFY_PROMPT)})
    recipe = read_recipe(path)
    assert recipe.source == "comfyui" and recipe.notes == []
    assert recipe.to_request() == ImageRequest(
        model="v1-5-pruned-emaonly.safetensors",
        prompt="beautiful scenery nature glass bottle landscape", negative="text, watermark",
        seed=8566257, steps=20, guidance=8.0, width=768, height=512,
        scheduler="DPM++ 2M", schedule="Karras")


def test_comfyui_graph_with_lora_controlnet_primitive_and_hires_pass(tmp_path: Path) -> None:
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["3"]["inputs"].update({"seed": ["20", 0], "model": ["10", 0],
                                 "positive": ["11", 0], "negative": ["11", 1],
                                 "sampler_name": "euler_ancestral", "scheduler": "normal"})
    graph["10"] = {"class_type": "LoraLoader", "inputs": {
        "model": ["4", 0], "clip": ["4", 1], "lora_name": "detail.safetensors",
        "strength_model": 1, "strength_clip": 1}}
    graph["11"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["6", 0], "negative": ["7", 0], "control_net": ["12", 0],
        "image": ["13", 0], "strength": 1}}
    graph["20"] = {"class_type": "PrimitiveInt", "inputs": {"value": 2**40 + 3}}
    # a second, hires pass sampling the first one's latent
    graph["30"] = {"class_type": "KSampler", "inputs": {
        "seed": 1, "steps": 10, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 0.5, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
        "latent_image": ["31", 0]}}
    graph["31"] = {"class_type": "LatentUpscale", "inputs": {
        "samples": ["3", 0], "width": 1536, "height": 1024, "upscale_method": "nearest-exact",
        "crop": "disabled"}}
    path = save_png(tmp_path / "c.png", {"prompt": json.dumps(graph),
                                         "workflow": json.dumps({"nodes": []})})
    recipe = read_recipe(path)
    request = recipe.request
    assert request["prompt"] == "beautiful scenery nature glass bottle landscape"
    assert request["negative"] == "text, watermark"
    assert request["model"] == "v1-5-pruned-emaonly.safetensors"
    assert request["scheduler"] == "Euler a"
    assert (request["width"], request["height"], request["steps"]) == (768, 512, 20)
    assert request["seed"] == 2**40 + 3  # 64-bit seeds are kept exactly
    assert not any("bits" in n for n in recipe.notes)
    assert any("several samplers" in n for n in recipe.notes)
    Request.from_dict(request).validate()


def test_comfyui_ui_workflow_only(tmp_path: Path) -> None:
    workflow = {
        "nodes": [
            {"id": 3, "type": "KSampler",
             "inputs": [{"name": "model", "type": "MODEL", "link": 1},
                        {"name": "positive", "type": "CONDITIONING", "link": 4},
                        {"name": "negative", "type": "CONDITIONING", "link": 6},
                        {"name": "latent_image", "type": "LATENT", "link": 2}],
             "widgets_values": [42, "randomize", 25, 6.5, "euler", "normal", 1]},
            {"id": 4, "type": "CheckpointLoaderSimple",
             "widgets_values": ["sd_xl_base_1.0.safetensors"]},
            {"id": 5, "type": "EmptyLatentImage", "widgets_values": [1024, 768, 1]},
            {"id": 6, "type": "CLIPTextEncode", "inputs": [{"name": "clip", "link": 3}],
             "widgets_values": ["a castle on a hill"]},
            {"id": 7, "type": "CLIPTextEncode", "inputs": [{"name": "clip", "link": 5}],
             "widgets_values": ["fog"]},
        ],
        "links": [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"],
                  [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 7, 0, "CLIP"],
                  [6, 7, 0, 3, 2, "CONDITIONING"]],
    }
    recipe = read_recipe(save_png(tmp_path / "w.png", {"workflow": json.dumps(workflow)}))
    assert recipe.source == "comfyui"
    assert recipe.to_request() == ImageRequest(
        model="sd_xl_base_1.0.safetensors", prompt="a castle on a hill", negative="fog",
        seed=42, steps=25, guidance=6.5, width=1024, height=768, scheduler="Euler")


INVOKE = {
    "generation_mode": "txt2img", "positive_prompt": "a koi pond, ukiyo-e",
    "negative_prompt": "photo", "width": 768, "height": 512, "seed": 2718281828,
    "rand_device": "cpu", "cfg_scale": 7.5, "cfg_rescale_multiplier": 0, "steps": 30,
    "scheduler": "dpmpp_2m_k",
    "model": {"key": "f3c2", "hash": "blake3:00", "name": "Deliberate v2", "base": "sd-1",
              "type": "main"},
    "app_version": "4.2.4",
}


def test_invokeai_metadata(tmp_path: Path) -> None:
    path = save_png(tmp_path / "inv.png", {"invokeai_metadata": json.dumps(INVOKE),
                                           "invokeai_graph": "{}"})
    recipe = read_recipe(path)
    assert recipe.source == "invokeai" and recipe.notes == []
    assert recipe.to_request() == ImageRequest(
        model="Deliberate v2", prompt="a koi pond, ukiyo-e", negative="photo",
        seed=2718281828, steps=30, guidance=7.5, width=768, height=512,
        scheduler="DPM++ 2M", schedule="Karras")


def test_invokeai_v3_model_and_img2img_note(tmp_path: Path) -> None:
    meta = dict(INVOKE, model={"model_name": "sd-1.5", "base_model": "sd-1"},
                generation_mode="img2img", scheduler="euler_k")
    recipe = read_recipe(save_png(tmp_path / "inv3.png", {"invokeai_metadata": json.dumps(meta)}))
    assert recipe.request["model"] == "sd-1.5" and recipe.request["scheduler"] == "Euler"
    assert recipe.request["schedule"] == "Karras"  # Euler has a Karras schedule here now
    assert len(recipe.notes) == 1


FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion.safetensors",
    "base_model_hash": "aeb7e9e689", "full_negative_prompt": ["ugly"],
    "full_prompt": ["a cozy cabin, cinematic"], "guidance_scale": 4.0, "loras": [],
    "negative_prompt": "ugly", "performance": "Speed", "prompt": "a cozy cabin",
    "refiner_model": "None", "refiner_switch": 0.5, "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m", "scheduler": "karras", "seed": "1234567890123", "sharpness": 2.0,
    "steps": 30, "styles": "['Fooocus V2', 'Fooocus Enhance']", "vae": "Default (model)",
    "version": "Fooocus v2.5.0",
}


def test_fooocus_json_scheme(tmp_path: Path) -> None:
    path = save_png(tmp_path / "f.png", {"parameters": json.dumps(FOOOCUS),
                                         "fooocus_scheme": "fooocus"})
    recipe = read_recipe(path)
    assert recipe.source == "fooocus" and recipe.parameters == ""
    request = recipe.request
    assert request["prompt"] == "a cozy cabin" and request["negative"] == "ugly"
    assert (request["width"], request["height"]) == (1152, 896)
    assert request["scheduler"] == "DPM++ 2M" and request["schedule"] == "Karras"
    assert request["steps"] == 30
    assert request["guidance"] == 4.0
    assert request["model"] == "juggernautXL_v8Rundiffusion.safetensors"
    assert request["seed"] == 1234567890123  # 64-bit seeds are kept exactly
    assert any("styles" in n for n in recipe.notes) and not any("bits" in n for n in recipe.notes)
    recipe.to_request().validate()


def test_fooocus_a1111_scheme_uses_the_raw_prompt(tmp_path: Path) -> None:
    text = (
        "a cozy cabin, cinematic, highly detailed\nNegative prompt: ugly\n"
        "Steps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 12345, Size: 1152x896, CFG scale: 4, "
        'Sharpness: 2, ADM Guidance: "(1.5, 0.8, 0.3)", Model: juggernautXL, '
        "Performance: Speed, Scheduler: karras, VAE: Default (model), Raw prompt: a cozy cabin, "
        "Version: Fooocus v2.5.0"
    )
    recipe = read_recipe(save_png(tmp_path / "fa.png", {"parameters": text,
                                                        "fooocus_scheme": "a1111"}))
    assert recipe.source == "fooocus"
    assert recipe.request["prompt"] == "a cozy cabin"
    assert recipe.request["seed"] == 12345
    assert recipe.notes == []  # DPM++ 2M SDE with Karras is a Studio sampler now
    assert (recipe.request["scheduler"], recipe.request["schedule"]) == ("DPM++ 2M SDE", "Karras")


def test_swarmui_parameters(tmp_path: Path) -> None:
    swarm = {"sui_image_params": {"prompt": "a robot", "negativeprompt": "rust", "model":
                                  "OfficialStableDiffusion/sd_xl_base_1.0", "seed": 77,
                                  "steps": 20, "cfgscale": 7, "width": 1024, "height": 1024,
                                  "sampler": "euler", "scheduler": "normal"}}
    recipe = read_recipe(save_png(tmp_path / "s.png", {"parameters": json.dumps(swarm)}))
    assert recipe.source == "swarmui"
    assert recipe.to_request() == ImageRequest(
        model="OfficialStableDiffusion/sd_xl_base_1.0", prompt="a robot", negative="rust",
        seed=77, steps=20, guidance=7.0, width=1024, height=1024, scheduler="Euler")


def test_ours_wins_and_a_damaged_record_falls_back(tmp_path: Path) -> None:
    [path] = save_images(Result(request=REQUEST.replace(batch_size=1), modality="image",
                                images=_images(1)), tmp_path)
    assert read_recipe(path).source == "studio"
    broken = save_png(tmp_path / "b.png", {"studio": "{not json", "parameters": A1111_TEXT})
    recipe = read_recipe(broken)
    assert recipe.source == "a1111" and any("damaged" in n for n in recipe.notes)


# ─── JPEG / WebP EXIF ─────────────────────────────────────────────────────────────────


def _save_with_comment(path: Path, comment: bytes, fmt: str) -> Path:
    exif = Image.Exif()
    exif.get_ifd(png.EXIF_IFD)[png.USER_COMMENT] = comment
    Image.new("RGB", (40, 24), (1, 2, 3)).save(path, format=fmt, exif=exif)
    return path


@pytest.mark.parametrize(
    ("suffix", "fmt", "encoding"),
    [(".jpg", "JPEG", "utf-16-be"), (".jpeg", "JPEG", "utf-16-le"), (".webp", "WEBP", "utf-16-be")],
)
def test_exif_user_comment(tmp_path: Path, suffix: str, fmt: str, encoding: str) -> None:
    text = A1111_TEXT.replace("portrait of a knight", "portrait d'un chevalier, 騎士")
    path = _save_with_comment(tmp_path / f"a{suffix}", b"UNICODE\0" + text.encode(encoding), fmt)
    recipe = read_recipe(path)
    assert recipe.source == "a1111" and recipe.parameters == text
    assert recipe.request["prompt"].startswith("portrait d'un chevalier, 騎士")
    assert recipe.raw["format"] == fmt and recipe.raw["size"] == [40, 24]


def test_exif_ascii_comment(tmp_path: Path) -> None:
    path = _save_with_comment(tmp_path / "b.jpg", b"ASCII\0\0\0" + A1111_TEXT.encode(), "JPEG")
    assert read_recipe(path).request["seed"] == 123456


def test_decode_user_comment_variants() -> None:
    assert png.decode_user_comment("plain\0") == "plain"
    assert png.decode_user_comment(b"\0" * 8 + "ütf".encode()) == "ütf"
    assert png.decode_user_comment(b"UNICODE\0" + "Hi".encode("utf-16-be")) == "Hi"
    assert png.decode_user_comment(b"UNICODE\0" + "Hi".encode("utf-16-le")) == "Hi"
    assert png.decode_user_comment(None) == ""
    # text with no ASCII at all: A1111 (piexif) writes big-endian, which wins the tie
    assert png.decode_user_comment(b"UNICODE\0" + "灯台".encode("utf-16-be")) == "灯台"


# ─── errors ───────────────────────────────────────────────────────────────────────────


def test_not_a_png(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("hello, I am text")
    with pytest.raises(RecipeError) as info:
        read_recipe(path)
    assert str(info.value) == "fake.png is not a PNG image."


def test_a_jpeg_named_png_still_reads(tmp_path: Path) -> None:
    path = _save_with_comment(tmp_path / "really-a-jpeg.png",
                              b"ASCII\0\0\0" + A1111_TEXT.encode(), "JPEG")
    assert read_recipe(path).source == "a1111"


def test_png_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(RecipeError) as info:
        read_recipe(path)
    assert str(info.value) == (
        "plain.png holds no recipe (no generation settings were found in it).")
    save_png(path, {"prompt": "just words, not a ComfyUI graph", "Software": "GIMP"})
    with pytest.raises(RecipeError, match="holds no recipe"):
        read_recipe(path)


def test_truncated_png(tmp_path: Path) -> None:
    [path] = save_images(Result(request=REQUEST.replace(batch_size=1), modality="image",
                                images=_images(1)), tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[:20])  # inside IHDR
    with pytest.raises(RecipeError, match=r"^cut\.png is corrupt \(.*\)\.$"):
        read_recipe(cut)
    cut.write_bytes(data[:-200])  # pixels lost, but the metadata before them survived
    recipe = read_recipe(cut)
    assert recipe.source == "studio" and recipe.raw["truncated"] is True


def test_bad_checksum_chunk_is_skipped(tmp_path: Path) -> None:
    path = save_png(tmp_path / "crc.png", {"parameters": A1111_TEXT})
    data = bytearray(path.read_bytes())
    at = data.index(b"tEXtparameters") + 20
    data[at] ^= 0xFF  # corrupt one byte of the text: the CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(RecipeError, match="holds no recipe"):
        read_recipe(path)


def test_bad_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(RecipeError, match=r"^broken\.jpg is not a readable JPEG image"):
        read_recipe(path)


def test_read_png_chunks_reports_size_and_completeness(tmp_path: Path) -> None:
    path = save_png(tmp_path / "x.png", {"a": "1", "b": "2"}, size=(33, 44))
    texts, size, complete = png.read_png_chunks(path)
    assert texts == {"a": "1", "b": "2"} and size == (33, 44) and complete
    raw = path.read_bytes()
    # a compressed iTXt whose zlib data is garbage is skipped, not fatal
    body = b"bad\0\x01\x00\0\0" + b"garbage"
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(
        ">I", zlib.crc32(b"iTXt" + body))
    path.write_bytes(raw[:33] + chunk + raw[33:])
    texts, _, _ = png.read_png_chunks(path)
    assert texts == {"a": "1", "b": "2"}
