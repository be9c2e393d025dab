"""Requests: every bad value is one clear RequestError sentence; seeds are drawn and recorded."""

from __future__ import annotations

import math

import pytest

from studio.core.errors import RequestError
from studio.core.requests import (
    SCHEDULERS,
    ImageRequest,
    MusicRequest,
    Request,
    TextRequest,
)
from studio.core.seeds import MAX_SEED, draw_seed, parse_seed, resolve_seed

GOOD = ImageRequest(model="builtin:faces", prompt="a fox", seed=1)


def _one_sentence(message: str) -> None:
    assert message and message[0].isupper(), message
    assert message.endswith("."), message
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"width": 500}, "Width must be a multiple of 8, not 500."),
        ({"height": 1001}, "Height must be a multiple of 8, not 1001."),
        ({"width": 8192}, "Width must be between 64 and 4096, not 8192."),
        ({"height": 32}, "Height must be between 64 and 4096, not 32."),
        ({"steps": 0}, "Steps must be between 1 and 1000, not 0."),
        ({"steps": -5}, "Steps must be between 1 and 1000"),
        ({"steps": 2.5}, "Steps must be a whole number."),
        ({"guidance": math.nan}, "CFG scale must be a finite number, not nan."),
        ({"guidance": math.inf}, "CFG scale must be a finite number"),
        ({"guidance": 99.0}, "CFG scale must be between 0 and 50, not 99."),
        ({"scheduler": "DPM fast"}, "Unknown scheduler 'DPM fast'"),
        ({"model": ""}, "Choose a model first."),
        ({"model": "   "}, "Choose a model first."),
        ({"seed": -2}, "seed must be -1 (random) or between 0 and"),
        ({"seed": MAX_SEED + 1}, "seed must be -1 (random)"),
        ({"seed": True}, "seed must be a whole number."),
        ({"batch_size": 0}, "Batch size must be between 1 and 16, not 0."),
        ({"variation_strength": 1.5}, "Variation strength must be between 0 and 1"),
        ({"prompt": 12}, "The prompt must be text."),
        ({"negative": None}, "The negative prompt must be text."),
    ],
)
def test_bad_image_values_raise_one_sentence(changes: dict, needle: str) -> None:
    request = GOOD.replace(**changes)
    with pytest.raises(RequestError) as info:
        request.validate()
    assert needle in str(info.value)
    _one_sentence(str(info.value))


def test_good_requests_validate() -> None:
    GOOD.validate()
    for scheduler in SCHEDULERS:
        GOOD.replace(scheduler=scheduler, width=64, height=4096).validate()
    TextRequest(model="builtin:smollm2", prompt="Hello").validate()
    MusicRequest(model="builtin:composer", prompt="calm").validate()


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (TextRequest(model="m", prompt="  "), "Write a prompt first."),
        (TextRequest(model="m", prompt="hi", temperature=-1.0), "Temperature must be between"),
        (TextRequest(model="m", prompt="hi", top_p=math.nan), "Top-p must be a finite number"),
        (TextRequest(model="m", prompt="hi", max_new_tokens=0), "Max new tokens must be"),
        (TextRequest(model="m", prompt="hi", stop=("",)), "Stop strings must be non-empty"),
        (MusicRequest(model="m", duration=0.1), "Duration must be between 0.5 and 600"),
        (MusicRequest(model="m", duration=math.nan), "Duration must be a finite number"),
        (MusicRequest(model="", duration=5.0), "Choose a model first."),
    ],
)
def test_bad_text_and_music_values(request_: Request, needle: str) -> None:
    with pytest.raises(RequestError) as info:
        request_.validate()
    assert needle in str(info.value)
    _one_sentence(str(info.value))


def test_resolved_draws_random_seeds_and_keeps_given_ones() -> None:
    random = ImageRequest(model="m", seed=-1)
    drawn = random.resolved()
    assert random.seed == -1  # frozen: the original is untouched
    assert 0 <= drawn.seed <= MAX_SEED
    assert drawn.resolved() == drawn  # nothing left to draw
    assert drawn.variation_seed == -1  # no variation asked: its seed stays random
    fixed = ImageRequest(model="m", seed=42)
    assert fixed.resolved() is fixed
    varied = ImageRequest(model="m", seed=3, variation_strength=0.5).resolved()
    assert varied.seed == 3 and 0 <= varied.variation_seed <= MAX_SEED
    assert TextRequest(model="m", prompt="x").resolved().seed >= 0


def test_drawn_seeds_differ() -> None:
    seeds = {ImageRequest(model="m").resolved().seed for _ in range(20)}
    assert len(seeds) > 15


def test_round_trip_through_dict_for_every_kind() -> None:
    for request in (
        GOOD.replace(negative="blur", scheduler="DPM++ 2M Karras", variation_strength=0.25),
        TextRequest(model="m", prompt="Once", stop=("\n\n", "END"), temperature=0.3),
        MusicRequest(model="m", prompt="jazz", duration=12.5),
    ):
        data = request.to_dict()
        assert data["kind"] == request.kind
        assert Request.from_dict(data) == request
        assert type(request).from_dict(data) == request


def test_from_dict_coerces_strings_and_ignores_unknown_keys() -> None:
    request = Request.from_dict({
        "kind": "image", "model": "m", "steps": "30", "guidance": "7.5", "width": "768",
        "height": 512.0, "seed": " 123 ", "variation_seed": "", "bogus": 1,
    })
    assert isinstance(request, ImageRequest)
    assert (request.steps, request.guidance, request.width, request.height) == (30, 7.5, 768, 512)
    assert request.seed == 123 and request.variation_seed == -1
    assert Request.from_dict({"kind": "image", "model": "m", "steps": "20.0"}).steps == 20
    text = Request.from_dict({"kind": "text", "model": "m", "stop": "END"})
    assert text.stop == ("END",)


def test_from_dict_errors_are_sentences() -> None:
    with pytest.raises(RequestError, match="Unknown request kind 'video'"):
        Request.from_dict({"kind": "video"})
    with pytest.raises(RequestError) as info:
        Request.from_dict({"kind": "image", "model": "m", "steps": "many"})
    assert str(info.value) == "Steps must be a number, not 'many'."
    with pytest.raises(RequestError, match="Seed: seed 'abc' is not a whole number"):
        Request.from_dict({"kind": "image", "model": "m", "seed": "abc"})
    # a non-integral float steps value survives coercion and is refused by validate()
    request = Request.from_dict({"kind": "image", "model": "m", "steps": "20.5"})
    with pytest.raises(RequestError, match="Steps must be a whole number"):
        request.validate()


def test_parse_seed() -> None:
    assert parse_seed(None) == -1
    assert parse_seed("") == -1
    assert parse_seed("  random ") == -1
    assert parse_seed(" 42 ") == 42
    assert parse_seed(7) == 7
    assert parse_seed(8.0) == 8
    for bad in ("abc", 1.5, True):
        with pytest.raises(ValueError):
            parse_seed(bad)


def test_draw_and_resolve_seed_range() -> None:
    for _ in range(100):
        assert 0 <= draw_seed() <= MAX_SEED
    assert resolve_seed(5) == 5
    assert 0 <= resolve_seed(-1) <= MAX_SEED


def test_music_blend_fields_validate_and_round_trip() -> None:
    plain = MusicRequest("m", "calm", 3)
    assert plain.blend_prompt == "" and plain.blend == 0.0
    plain.validate()
    blended = MusicRequest(model="m", prompt="calm", seed=3, blend_prompt="lively jig", blend=0.25)
    blended.validate()
    again = Request.from_dict(blended.to_dict())
    assert again == blended
    assert Request.from_dict({**blended.to_dict(), "blend": "0.5"}).blend == 0.5
    # old recipes without the fields still load, with no blend
    old = {k: v for k, v in blended.to_dict().items() if k not in ("blend", "blend_prompt")}
    assert Request.from_dict(old).blend == 0.0
    for bad, message in (
        (MusicRequest(model="m", blend_prompt="x", blend=1.5), "Blend must be between 0 and 1"),
        (MusicRequest(model="m", blend_prompt="x", blend=-0.1), "Blend must be between 0 and 1"),
        (MusicRequest(model="m", blend_prompt="x", blend=math.nan), "Blend must be a finite"),
        (MusicRequest(model="m", blend_prompt="  ", blend=0.5), "Write a prompt to blend toward"),
    ):
        with pytest.raises(RequestError, match=message):
            bad.validate()
    # a blend prompt with a zero blend is fine (the slider is simply at 0 %)
    MusicRequest(model="m", blend_prompt="jig", blend=0.0).validate()


def test_fields_carry_their_metadata_once() -> None:
    from studio.core.explore import ExploreRequest
    from studio.core.fields import spec, specs

    steps = spec(ImageRequest, "steps")
    assert (steps.default, steps.low, steps.high, steps.flag) == (20, 1, 1000, "--steps")
    assert steps.default == ImageRequest().steps and steps.is_int
    cfg = spec(ImageRequest, "guidance")
    assert (cfg.label, cfg.short, cfg.default) == ("CFG scale", "CFG", 7.0)
    assert spec(ExploreRequest, "guidance") == cfg  # the explorer shares the image's fields
    assert spec(MusicRequest, "duration").suffix == " s"
    assert spec(TextRequest, "max_new_tokens").flag == "--max-tokens"
    assert "stop" not in specs(TextRequest) and "temperature" in specs(TextRequest)
    # every range in the metadata is the one validation enforces
    for cls in (ImageRequest, TextRequest, MusicRequest):
        for name, s in specs(cls).items():
            if s.high is None:
                continue
            base = cls(model="m", prompt="p")
            if cls is MusicRequest:
                base = base.replace(blend_prompt="q")
            too_big = s.high + (1 if s.is_int else 0.5)
            with pytest.raises(RequestError, match=f"^{s.label} must be between"):
                base.replace(**{name: too_big}).validate()
            base.replace(**{name: type(s.default)(s.high)}).validate()


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (ImageRequest(model="m", prompt="a \udcff fox"), "The prompt is not valid UTF-8 text."),
        (ImageRequest(model="m", negative="\ud800"),
         "The negative prompt is not valid UTF-8 text."),
        (TextRequest(model="m", prompt="x", system="\udcff"),
         "The system prompt is not valid UTF-8 text."),
        (TextRequest(model="m", prompt="x", stop=("\udcff",)),
         "A stop string is not valid UTF-8 text."),
        (MusicRequest(model="m", prompt="x", blend_prompt="\udcff", blend=0.5),
         "The blend prompt is not valid UTF-8 text."),
    ],
)
def test_text_that_utf8_cannot_hold_is_refused(request_, needle) -> None:
    with pytest.raises(RequestError) as info:
        request_.validate()
    assert str(info.value) == needle


def test_requests_module_imports_no_request_kind_module() -> None:
    """core/requests ↔ core/explore was an import cycle: kinds now register themselves."""
    import ast
    from pathlib import Path

    import studio.core.requests as requests

    tree = ast.parse(Path(requests.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "studio.core.explore" not in imported
    assert requests.REQUEST_TYPES["explore"].__name__ == "ExploreRequest"
