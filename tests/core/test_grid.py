"""X/Y/Z plot axes parsed as A1111 parses them, the prompt matrix, the plan and the grid image."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

from studio.core.errors import RequestError
from studio.core.fields import param
from studio.core.grid import (
    GridPlan,
    parse_axis,
    prompt_matrix_parts,
    render_grid,
    resolve_field,
    split_values,
)
from studio.core.requests import ImageRequest, MusicRequest, TextRequest


@dataclasses.dataclass(frozen=True)
class Img2Img(ImageRequest):
    """A request with the fields img2img and LoRA will add (its own kind, for this test)."""

    kind: ClassVar[str] = "test-img2img"
    strength: float = param(0.75, label="Denoising strength", short="Strength", low=0.0,
                            high=1.0, flag="--strength")
    lora_weight: float = param(1.0, label="LoRA weight", low=-2.0, high=2.0)


BASE = ImageRequest(model="m", prompt="a red fox, oil", seed=11, width=64, height=64)


@pytest.mark.parametrize(
    ("field", "text", "values"),
    [
        ("steps", "1-5", [1, 2, 3, 4, 5]),
        ("steps", "5-30 (+5)", [5, 10, 15, 20, 25, 30]),
        ("steps", "30-10 (-10)", [30, 20, 10]),
        ("steps", "1-10 [4]", [1, 4, 7, 10]),
        ("steps", "1-3, 8, 10-12 (+2)", [1, 2, 3, 8, 10, 12]),
        ("steps", " 4 ,  6 ", [4, 6]),
        ("seed", "1-3", [1, 2, 3]),
        ("seed", "4294967295", [4294967295]),
        ("CFG", "1-2 (+0.5)", [1.0, 1.5, 2.0]),
        ("cfg scale", "1-10 [3]", [1.0, 5.5, 10.0]),
        ("guidance", "7, 3.5", [7.0, 3.5]),
        ("--guidance", "0.25", [0.25]),
        ("sampler", "Euler, DDIM, \"DPM++ 2M Karras\"", ["Euler", "DDIM", "DPM++ 2M Karras"]),
        ("size", "512x768, 64 x 64", [(512, 768), (64, 64)]),
        ("model", "a.safetensors, builtin:faces", ["a.safetensors", "builtin:faces"]),
        ("Var. strength", "0-1 [3]", [0.0, 0.5, 1.0]),
        ("width", "64-128 (+32)", [64, 96, 128]),
        ("Prompt S/R", "red, blue, \"green, dark\"", ["red", "blue", "green, dark"]),
    ],
)
def test_axis_values_as_a1111_reads_them(field, text, values):
    axis = parse_axis(ImageRequest, BASE, field, text)
    assert list(axis.values) == values
    assert len(axis.labels) == len(values)


def test_field_names_come_from_the_request_metadata():
    assert resolve_field(ImageRequest, "CFG").name == "guidance"
    assert resolve_field(ImageRequest, "Sampler").name == "scheduler"
    assert resolve_field(ImageRequest, "--batch").name == "batch_size"
    assert resolve_field(MusicRequest, "seconds").name == "duration"
    assert resolve_field(MusicRequest, "Blend").name == "blend"
    assert resolve_field(TextRequest, "temperature").name == "temperature"
    assert resolve_field(TextRequest, "Top-p").name == "top_p"
    # img2img's own `strength` field wins over the variation strength's short label
    assert resolve_field(ImageRequest, "strength").name == "strength"
    assert resolve_field(ImageRequest, "Variation strength").name == "variation_strength"


def test_a_field_added_to_a_request_is_an_axis_at_once():
    """LoRA weight, img2img strength…: whatever a request declares with param() is an axis,
    and a field's own name wins over another field's short label."""
    base = Img2Img(model="m", seed=1, width=64, height=64)
    assert resolve_field(Img2Img, "strength").name == "strength"
    assert resolve_field(Img2Img, "LoRA weight").name == "lora_weight"
    plan = GridPlan.from_axes(base, ("strength", "0.25-0.75 (+0.25)"), ("lora weight", "0, 1"))
    assert [(c.request.strength, c.request.lora_weight) for c in plan.cells] == [
        (0.25, 0.0), (0.5, 0.0), (0.75, 0.0), (0.25, 1.0), (0.5, 1.0), (0.75, 1.0)]
    with pytest.raises(RequestError, match="Denoising strength must be between 0 and 1"):
        GridPlan.from_axes(base, ("strength", "2"))


@pytest.mark.parametrize(
    ("field", "text", "needle"),
    [
        ("bogus", "1, 2", "Unknown grid axis field 'bogus'"),
        ("duration", "1, 2", "Unknown grid axis field 'duration' for image requests"),
        ("steps", "", "has no values"),
        ("steps", " , ,", "has no values"),
        ("steps", "5-1", "the range '5-1' gives no values"),
        ("steps", "1-10 [0]", "gives no values"),
        ("CFG", "5-1 (+1)", "gives no values"),
        ("steps", "0", "Steps must be between 1 and 1000, not 0."),
        ("steps", "many", "Steps must be a number"),
        ("width", "100", "Width must be a multiple of 8, not 100."),
        ("sampler", "Euler, Bogus", "Unknown scheduler 'Bogus'"),
        ("size", "big", "a size is WIDTHxHEIGHT"),
        ("seed", "x", "seed"),
        ("Prompt S/R", "wolf, cat", "'wolf' is not in the prompt"),
    ],
)
def test_bad_axes_are_one_sentence(field, text, needle):
    with pytest.raises(RequestError) as info:
        GridPlan.from_axes(BASE, (field, text))
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_unknown_field_lists_what_can_be_chosen():
    with pytest.raises(RequestError, match=r"choose one of .*steps") as info:
        resolve_field(ImageRequest, "stepz")
    assert "guidance" in str(info.value) and "size" in str(info.value)


def test_split_values_keeps_quoted_commas():
    assert split_values('a, "b, c" ,d') == ["a", "b, c", "d"]
    assert split_values("") == []


def test_plan_cells_are_x_fastest_then_y_then_z_and_each_is_the_whole_recipe():
    plan = GridPlan.from_axes(BASE, ("steps", "1-3"), ("cfg", "2, 4"), ("size", "64x64, 128x64"))
    assert plan.shape == (3, 2, 2)
    assert len(plan.cells) == 12
    first, last = plan.cells[0], plan.cells[-1]
    assert (first.x, first.y, first.z) == (0, 0, 0)
    assert (plan.cells[1].x, plan.cells[1].y) == (1, 0)
    assert (last.x, last.y, last.z) == (2, 1, 1)
    r = last.request
    assert (r.steps, r.guidance, r.width, r.height, r.seed) == (3, 4.0, 128, 64, 11)
    assert {c.request.prompt for c in plan.cells} == {BASE.prompt}


def test_prompt_search_replace_changes_prompt_and_negative_first_value_keeps_it():
    base = BASE.replace(negative="no red")
    plan = GridPlan.from_axes(base, ("prompt s/r", "red, blue"))
    prompts = [(c.request.prompt, c.request.negative) for c in plan.cells]
    assert prompts == [("a red fox, oil", "no red"), ("a blue fox, oil", "no blue")]


def test_a_random_seed_is_drawn_once_for_the_whole_plot():
    plan = GridPlan.from_axes(BASE.replace(seed=-1), ("steps", "1-4"))
    seeds = {c.request.seed for c in plan.cells}
    assert len(seeds) == 1 and -1 not in seeds
    assert plan.base.seed in seeds
    seed_axis = GridPlan.from_axes(BASE, ("seed", "-1, -1, 5"))
    drawn = [c.request.seed for c in seed_axis.cells]
    assert drawn[2] == 5 and -1 not in drawn


def test_batch_count_makes_copies_a_batch_apart():
    plan = GridPlan.from_axes(BASE.replace(batch_size=2), ("steps", "1, 2"), count=3)
    assert len(plan.cells) == 6
    assert [c.request.seed for c in plan.cells if c.x == 0] == [11, 13, 15]
    assert len(plan.first_cells()) == 2
    with pytest.raises(RequestError, match="batch count"):
        GridPlan.from_axes(BASE, ("steps", "1"), count=0)


def test_recipe_rebuilds_the_same_plot():
    plan = GridPlan.from_axes(BASE.replace(seed=-1), ("steps", "5-15 (+5)"),
                              ("sampler", "Euler, DDIM"), count=2)
    again = GridPlan.from_recipe(plan.recipe())
    assert again.cells == plan.cells
    assert again.recipe() == plan.recipe()
    with pytest.raises(RequestError, match="not a grid recipe"):
        GridPlan.from_recipe({"kind": "image"})


def test_a_plot_needs_an_axis_and_a_valid_base():
    with pytest.raises(RequestError, match="at least one axis"):
        GridPlan.from_axes(BASE)
    with pytest.raises(RequestError, match="Choose a model"):
        GridPlan.from_axes(BASE.replace(model=""), ("steps", "1"))


def test_prompt_matrix_is_every_combination_in_a1111_order():
    plan = GridPlan.prompt_matrix(BASE.replace(prompt="a cat | snow | night | oil"))
    prompts = [c.request.prompt for c in plan.cells]
    assert prompts == ["a cat", "a cat, snow", "a cat, night", "a cat, snow, night",
                       "a cat, oil", "a cat, snow, oil", "a cat, night, oil",
                       "a cat, snow, night, oil"]
    assert plan.shape == (4, 2, 1)
    assert GridPlan.from_recipe(plan.recipe()).cells == plan.cells
    assert prompt_matrix_parts("a|b") == ["a", "b"]
    with pytest.raises(RequestError, match="optional parts"):
        GridPlan.prompt_matrix(BASE.replace(prompt="no bars here"))


def _solid(value: int, w: int = 32, h: int = 32) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_grid_image_has_cells_where_expected_and_labels_in_the_margins():
    plan = GridPlan.from_axes(BASE, ("steps", "1-3"), ("cfg", "2, 4"))
    images = {(c.x, c.y, 0): _solid(40 * (c.x + 3 * c.y) + 10) for c in plan.cells}
    grid = render_grid(plan, images)
    pixels = np.asarray(grid)
    left = grid.width - 3 * 32
    top = grid.height - 2 * 32
    assert left > 0 and top > 0  # room for the row labels and the column labels
    for (x, y, _z), image in images.items():
        region = pixels[top + y * 32:top + (y + 1) * 32, left + x * 32:left + (x + 1) * 32]
        assert (region == image).all()
    # the labels are ink on white: dark pixels above each column and left of each row
    for x in range(3):
        above = pixels[:top, left + x * 32:left + (x + 1) * 32]
        assert (above < 100).any() and (above == 255).any()
    for y in range(2):
        beside = pixels[top + y * 32:top + (y + 1) * 32, :left]
        assert (beside < 100).any()
    assert (pixels[:top, :left] == 255).all()  # the corner is blank


def test_longer_labels_make_wider_margins():
    short = GridPlan.from_axes(BASE, ("steps", "1"), ("cfg", "2"))
    long = GridPlan.from_axes(BASE, ("steps", "1"), ("sampler", "DPM++ 2M Karras"))
    a = render_grid(short, {(0, 0, 0): _solid(0)})
    b = render_grid(long, {(0, 0, 0): _solid(0)})
    assert b.width > a.width and a.height == b.height


def test_z_axis_makes_sub_grids_side_by_side_and_one_axis_has_no_left_margin():
    plan = GridPlan.from_axes(BASE, ("steps", "1, 2"), None, ("cfg", "2, 4, 6"))
    grid = render_grid(plan, {(c.x, 0, c.z): _solid(90) for c in plan.cells})
    gap = 16
    sub = (grid.width - 2 * gap) // 3
    assert sub == 2 * 32  # no Y axis: no left margin
    assert grid.height > 32 + 10  # the X labels and, above them, the Z labels
    pixels = np.asarray(grid)
    for z in range(3):
        ox = z * (sub + gap)
        assert (pixels[-32:, ox:ox + sub] == 90).all()
        assert (pixels[:, ox + sub:ox + sub + gap] == 255).all() if z < 2 else True


def test_cells_of_different_sizes_are_centred_in_the_largest():
    plan = GridPlan.from_axes(BASE, ("size", "128x128, 64x64"))
    grid = render_grid(plan, {(0, 0, 0): _solid(50, 64, 64), (1, 0, 0): _solid(200, 32, 32)})
    pixels = np.asarray(grid)
    top = grid.height - 64
    assert grid.width == 128
    assert (pixels[top + 16:top + 48, 64 + 16:64 + 48] == 200).all()
    assert (pixels[top:top + 16, 64:128] == 255).all()


def test_prompt_matrix_labels_ink_the_parts_in_and_grey_the_parts_out():
    plan = GridPlan.prompt_matrix(BASE.replace(prompt="a cat | snow"))
    grid = render_grid(plan, {(c.x, 0, 0): _solid(0) for c in plan.cells})
    pixels = np.asarray(grid).astype(int)
    top = grid.height - 32
    without, with_ = pixels[:top, 0:32], pixels[:top, 32:64]
    assert with_.min() < 60  # "+ snow" in ink
    assert without.min() >= 120 and (without < 255).any()  # "- snow" in grey
