"""A1111 infotext written exactly as A1111 writes it, parsed with its rules; XMP provenance."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from studio.core import metadata
from studio.core.metadata import (
    a1111_sampling,
    build_xmp,
    format_infotext,
    infotext_to_request_dict,
    parse_infotext,
    quote,
    unquote,
)
from studio.core.requests import SCHEDULERS, ImageRequest, Request, sampling

V = f"Version: Studio {metadata.__version__}"

BASE = ImageRequest(
    model="/models/v1-5-pruned-emaonly.safetensors",
    prompt="a red fox in the snow, (masterpiece:1.2)",
    negative="blurry, lowres",
    seed=965400086,
    steps=20,
    guidance=7.0,
    width=512,
    height=768,
    scheduler="Euler a",
)


def test_basic_infotext_exact() -> None:
    assert format_infotext(BASE, model_hash="6ce0161689") == (
        "a red fox in the snow, (masterpiece:1.2)\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x768, "
        f"Model hash: 6ce0161689, Model: v1-5-pruned-emaonly.safetensors, {V}"
    )


def test_karras_splits_into_sampler_and_schedule_type() -> None:
    text = format_infotext(BASE.replace(scheduler="DPM++ 2M Karras", guidance=7.5, negative=""))
    assert text == (
        "a red fox in the snow, (masterpiece:1.2)\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 965400086, "
        f"Size: 512x768, Model: v1-5-pruned-emaonly.safetensors, {V}"
    )


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [
        ("Euler a", "Sampler: Euler a, CFG"),
        ("Euler", "Sampler: Euler, CFG"),
        ("DDIM", "Sampler: DDIM, CFG"),
        ("UniPC", "Sampler: UniPC, CFG"),
        ("LCM", "Sampler: LCM, CFG"),
        ("DPM++ 2M", "Sampler: DPM++ 2M, Schedule type: Uniform, CFG"),
        ("DPM++ 2M Karras", "Sampler: DPM++ 2M, Schedule type: Karras, CFG"),
    ],
)
def test_every_scheduler_maps_to_a1111_names(scheduler: str, expected: str) -> None:
    assert expected in format_infotext(BASE.replace(scheduler=scheduler))
    assert scheduler in SCHEDULERS


def test_multiline_prompts_and_quoting_exact() -> None:
    request = BASE.replace(
        prompt="line one\nline two: with colon",
        negative="bad hands\nextra fingers",
        model="/m/my, model: v2",
        scheduler="Euler",
        guidance=5.5,
        variation_seed=1234,
        variation_strength=0.25,
        width=640,
        height=448,
    )
    text = format_infotext(
        request,
        seed=42,
        extras={"Note": 'say "hi"', "Place": "Paris, France", "Lines": "a\nb",
                "VAE": "vae-ft-mse.safetensors", "Clip skip": 2, "Empty": "", "None": None},
    )
    assert text == (
        "line one\n"
        "line two: with colon\n"
        "Negative prompt: bad hands\n"
        "extra fingers\n"
        'Steps: 20, Sampler: Euler, CFG scale: 5.5, Seed: 42, Size: 640x448, '
        'Model: "my, model: v2", VAE: vae-ft-mse.safetensors, Variation seed: 1234, '
        'Variation seed strength: 0.25, Clip skip: 2, Note: say "hi", '
        'Place: "Paris, France", Lines: "a\\nb", ' + V
    )


def test_empty_prompt_and_negative() -> None:
    text = format_infotext(ImageRequest(model="builtin:faces", seed=3, width=64, height=64))
    assert text == (  # a built-in id has a colon, so A1111's rule quotes it
        'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 64x64, '
        f'Model: "builtin:faces", {V}'
    )
    assert parse_infotext(text)["Model"] == "builtin:faces"
    only_negative = format_infotext(ImageRequest(model="m", negative="ugly", seed=1))
    assert only_negative.startswith("Negative prompt: ugly\nSteps: 20,")


def test_variation_only_when_strength_is_positive() -> None:
    assert "Variation" not in format_infotext(BASE.replace(variation_seed=5))
    text = format_infotext(BASE.replace(variation_seed=5, variation_strength=0.1))
    assert "Variation seed: 5, Variation seed strength: 0.1," in text


def test_clip_skip_one_is_dropped_and_version_can_be_overridden() -> None:
    text = format_infotext(BASE, extras={"Clip skip": 1, "Version": "v1.10.1"})
    assert "Clip skip" not in text
    assert text.endswith("Model: v1-5-pruned-emaonly.safetensors, Version: v1.10.1")
    named = format_infotext(BASE, model_name="custom name")
    assert "Model: custom name, Version" in named


def test_quote_rules() -> None:
    assert quote("plain") == "plain"
    assert quote('has "quotes"') == 'has "quotes"'  # A1111 only quotes , : and newlines
    assert quote("a, b") == '"a, b"'
    assert quote("a: b") == '"a: b"'
    assert quote("a\nb") == '"a\\nb"'
    assert quote("雪, 狐") == '"雪, 狐"'  # ensure_ascii=False, as A1111
    assert unquote('"a, b"') == "a, b"
    assert unquote('"broken') == '"broken'
    assert unquote('"not json\\x"') == '"not json\\x"'


# A real-world shaped A1111 1.10 infotext (hires fix, LoRA, quoted hashes).
A1111_TEXT = (
    "masterpiece, best quality, 1girl, <lora:add_detail:0.5>\n"
    "looking at viewer\n"
    "Negative prompt: lowres, bad anatomy\n"
    "bad hands\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3141592653, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    "Denoising strength: 0.52, Clip skip: 2, Hires upscale: 2, Hires upscaler: Latent, "
    'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1'
)


def test_parse_real_a1111_text() -> None:
    params = parse_infotext(A1111_TEXT)
    assert params == {
        "Prompt": "masterpiece, best quality, 1girl, <lora:add_detail:0.5>\nlooking at viewer",
        "Negative prompt": "lowres, bad anatomy\nbad hands",
        "Steps": "28",
        "Sampler": "DPM++ 2M",
        "Schedule type": "Karras",
        "CFG scale": "7",
        "Seed": "3141592653",
        "Size-1": "512",
        "Size-2": "768",
        "Model hash": "6ce0161689",
        "Model": "v1-5-pruned-emaonly",
        "Denoising strength": "0.52",
        "Clip skip": "2",
        "Hires upscale": "2",
        "Hires upscaler": "Latent",
        "Lora hashes": "add_detail: 7c6bad76eb54",
        "Version": "v1.10.1",
    }
    request = infotext_to_request_dict(params)
    notes = request.pop("notes")
    assert request == {
        "kind": "image", "prompt": params["Prompt"], "negative": params["Negative prompt"],
        "steps": 28, "guidance": 7.0, "seed": 3141592653, "width": 512, "height": 768,
        "scheduler": "DPM++ 2M", "schedule": "Karras", "clip_skip": 2,
        "model": "v1-5-pruned-emaonly",
    }
    assert not any("Clip skip" in n for n in notes)  # clip skip is honoured now
    assert any("hires fix" in n and "LoRAs" in n for n in notes)
    assert all(n.endswith(".") for n in notes)
    Request.from_dict(request).validate()


def test_last_line_needs_three_params() -> None:
    params = parse_infotext("a cat\nStyle: oil, Mood: calm")
    assert params["Prompt"] == "a cat\nStyle: oil, Mood: calm"
    assert "Style" not in params
    assert parse_infotext("just a prompt") == {"Prompt": "just a prompt", "Negative prompt": ""}
    assert parse_infotext("") == {"Prompt": "", "Negative prompt": ""}
    only = parse_infotext("Steps: 5, Seed: 1, Size: 64x64")
    assert only["Prompt"] == "" and only["Size-1"] == "64" and only["Seed"] == "1"


def test_empty_values_are_skipped_like_a1111() -> None:
    params = parse_infotext("p\nSteps: 5, Sampler: , Seed: 9, Model: x")
    assert "Sampler" not in params and params["Seed"] == "9"


def _fields(request: ImageRequest) -> dict:
    data = request.to_dict()
    # the sampler as it runs: an old combined name reads back as sampler + schedule type
    data["scheduler"] = sampling(request.scheduler, request.schedule)
    keys = ["prompt", "negative", "steps", "guidance", "seed", "width", "height", "scheduler"]
    if request.variation_strength > 0:
        keys += ["variation_seed", "variation_strength"]
    return {k: data[k] for k in keys}


@pytest.mark.parametrize(
    "request_",
    [
        BASE,
        BASE.replace(prompt="雪の中の狐, 🦊\n二行目: コロン", negative="ぼやけ"),
        BASE.replace(prompt='a "quoted", odd: prompt', negative="", scheduler="DPM++ 2M"),
        BASE.replace(prompt="", negative="only negative", scheduler="DPM++ 2M Karras"),
        BASE.replace(scheduler="LCM", guidance=1.0, steps=4, seed=0, width=1024, height=576),
        BASE.replace(scheduler="UniPC", variation_seed=77, variation_strength=0.75),
        BASE.replace(scheduler="DDIM", guidance=12.25, prompt="multi\nline\nprompt"),
        BASE.replace(scheduler="Euler", model="/a/b, c/model.safetensors"),
    ],
)
def test_round_trip_through_a1111_rules(request_: ImageRequest) -> None:
    text = format_infotext(request_)
    back = infotext_to_request_dict(parse_infotext(text))
    assert "notes" not in back
    rebuilt = Request.from_dict(back)
    assert _fields(rebuilt) == _fields(request_)
    assert back["model"] == metadata.model_display_name(request_.model)


@pytest.mark.parametrize(
    ("sampler", "schedule", "expected", "noted"),
    [
        ("DPM++ 2M", "Karras", ("DPM++ 2M", "Karras"), False),
        ("DPM++ 2M", "Automatic", ("DPM++ 2M", "Karras"), False),  # A1111 1.9+: its default
        ("DPM++ 2M", None, ("DPM++ 2M", "Automatic"), False),  # infotext from before 1.9
        ("DPM++ 2M", "Uniform", ("DPM++ 2M", "Automatic"), False),
        ("DPM++ 2M Karras", None, ("DPM++ 2M", "Karras"), False),  # old combined name
        ("DPM++ 2M", "Exponential", ("DPM++ 2M", "Exponential"), False),
        ("Euler a", "Automatic", ("Euler a", "Automatic"), False),
        ("euler", None, ("Euler", "Automatic"), False),
        ("Euler", "Karras", ("Euler", "Karras"), False),
        ("DPM++ SDE", "Karras", ("DPM++ SDE", "Karras"), False),
        ("DPM++ SDE", "Automatic", ("DPM++ SDE", "Karras"), False),
        ("DPM++ 2M SDE", "Automatic", ("DPM++ 2M SDE", "Exponential"), False),
        ("DPM++ 2M SDE Karras", None, ("DPM++ 2M SDE", "Karras"), False),
        ("DPM++ 3M SDE Exponential", None, ("DPM++ 3M SDE", "Exponential"), False),
        ("DPM2 a", "SGM Uniform", ("DPM2 a", "SGM Uniform"), False),
        ("Heun", None, ("Heun", "Automatic"), False),
        ("LMS", "Karras", ("LMS", "Karras"), False),
        ("Euler a", "Karras", ("Euler a", "Automatic"), True),  # no sigma schedule there
        ("DPM2", "Align Your Steps", ("DPM2", "Automatic"), True),
        ("DPM fast", None, ("Euler a", "Automatic"), True),
        (None, None, ("Euler a", "Automatic"), False),
    ],
)
def test_a1111_sampler_mapping(sampler, schedule, expected: tuple[str, str], noted: bool
                               ) -> None:
    name, ours, note = a1111_sampling(sampler, schedule)
    assert (name, ours) == expected
    assert (note is not None) == noted


def test_unknown_sampler_is_noted_in_the_request_dict() -> None:
    params = parse_infotext("cat\nSteps: 30, Sampler: DPM fast, CFG scale: 6, Seed: 1, "
                            "Size: 500x512")
    request = infotext_to_request_dict(params)
    assert request["scheduler"] == "Euler a"
    assert request["width"] == 496  # sizes are fitted to multiples of 8
    assert any("DPM fast" in n for n in request["notes"])
    assert any("500" in n for n in request["notes"])


def test_out_of_range_seed_is_folded_with_a_note() -> None:
    request = infotext_to_request_dict(  # beyond 64 bits (2**64 + 5)
        parse_infotext("x\nSteps: 1, Seed: 18446744073709551621, Size: 64x64"))
    assert request["seed"] == 5 and request["notes"]


def test_bad_numbers_are_left_out() -> None:
    request = infotext_to_request_dict(parse_infotext("x\nSteps: many, Seed: ?, CFG scale: nan"))
    assert "steps" not in request and "seed" not in request and "guidance" not in request


XMP_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
}


def test_xmp_marks_ai_content_and_escapes_the_prompt() -> None:
    prompt = 'a <b>bold</b> & "quoted" fox\nsecond line ]]> 狐狸\x01'
    packet = build_xmp(prompt, model_name='m<&>"', created=dt.datetime(2026, 1, 2, 3, 4, 5,
                                                                        tzinfo=dt.UTC))
    assert packet.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert packet.endswith('<?xpacket end="r"?>')
    root = ET.fromstring(packet.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    desc = root.find("rdf:RDF/rdf:Description", XMP_NS)
    assert desc is not None
    iptc = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}"
    assert desc.get(iptc + "DigitalSourceType") == metadata.DIGITAL_SOURCE_TYPE
    assert desc.get(iptc + "AISystemUsed") == 'm<&>"'
    assert desc.get("{http://ns.adobe.com/xap/1.0/}CreatorTool") == metadata.app_version()
    assert desc.get("{http://ns.adobe.com/xap/1.0/}CreateDate") == "2026-01-02T03:04:05+00:00"
    li = desc.find("dc:description/rdf:Alt/rdf:li", XMP_NS)
    assert li is not None
    assert li.text == prompt.replace("\x01", "")  # characters XML forbids are dropped
    assert li.get("{http://www.w3.org/XML/1998/namespace}lang") == "x-default"


def test_xmp_without_prompt_still_marks_provenance() -> None:
    packet = build_xmp("")
    assert metadata.DIGITAL_SOURCE_TYPE in packet and "dc:description" not in packet


def test_studio_record_and_json_safe() -> None:
    import numpy as np

    record = metadata.studio_record(BASE, "image", info=metadata.json_safe(
        {"seeds": [1, 2], "latents": np.zeros(3), "nan": float("nan"), "ok": "yes"}))
    assert record["modality"] == "image" and record["app"] == "Studio"
    assert record["app_version"] == metadata.__version__
    assert record["info"] == {"seeds": [1, 2], "ok": "yes"}
    assert metadata.record_request(record) == BASE.to_dict()
    assert metadata.record_request(BASE.to_dict()) == BASE.to_dict()
    assert metadata.record_request({"hello": 1}) is None
    assert metadata.record_request([1]) is None


def test_a_builtins_infotext_name_comes_from_its_family():
    from studio.core import families

    family = families.register(families.Family(
        "test-named", "Named", "image", ("image",), "tests.nowhere:Engine",
        a1111_model="named_v1"))
    families.register_builtin(families.Builtin("builtin:named", "Named", family.id, None,
                                               "named"))
    try:
        assert metadata.model_display_name("builtin:named") == "named_v1"
        assert metadata.model_display_name("builtin:smollm2") == "builtin:smollm2"  # no name
        assert metadata.model_display_name("builtin:gone") == "builtin:gone"
        assert metadata.model_display_name("/m/dream_8.safetensors") == "dream_8.safetensors"
    finally:
        families.unregister_builtin("builtin:named")
        families.unregister(family.id)


def test_img2img_inpaint_and_hires_keys_round_trip() -> None:
    """The A1111 keys for the image loop are written as A1111 writes them, and reading
    them back (modes=True, as the PNG importer does) fills the request fields again."""
    from studio.core.requests import ImageRequest

    hires = ImageRequest(model="m", prompt="a cat", seed=3, hires_scale=2.0, hires_steps=12,
                         hires_strength=0.45, hires_upscaler="lanczos")
    text = format_infotext(hires)
    assert ("Denoising strength: 0.45, Hires upscale: 2, Hires steps: 12, "
            "Hires upscaler: Lanczos, Version:") in text
    back = infotext_to_request_dict(parse_infotext(text), modes=True)
    assert (back["hires_scale"], back["hires_steps"], back["hires_strength"],
            back["hires_upscaler"]) == (2.0, 12, 0.45, "lanczos")
    assert "notes" not in back

    inpaint = ImageRequest(model="m", prompt="a cat", seed=3, init_image="/x/init.png",
                           mask="/x/mask.png", strength=0.6, mask_blur=8,
                           inpaint_area="masked", inpaint_padding=40)
    text = format_infotext(inpaint)
    assert ("Denoising strength: 0.6, Mask blur: 8, Inpaint area: Only masked, "
            "Masked area padding: 40") in text
    back = infotext_to_request_dict(parse_infotext(text), modes=True)
    assert (back["strength"], back["mask_blur"], back["inpaint_area"],
            back["inpaint_padding"]) == (0.6, 8, "masked", 40)
    assert format_infotext(ImageRequest(model="m", prompt="a cat", seed=3)).count(
        "Denoising") == 0  # text-to-image stays as it was


def test_a1111_hires_infotext_fills_the_hires_fields() -> None:
    back = infotext_to_request_dict(parse_infotext(A1111_TEXT), modes=True)
    assert (back["hires_scale"], back["hires_upscaler"], back["hires_strength"]) == \
        (2.0, "latent", 0.52)
    assert not any("hires fix" in n for n in back["notes"])
    assert any("LoRAs" in n for n in back["notes"])
