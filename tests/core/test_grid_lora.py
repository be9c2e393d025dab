"""LoRA-weight axes ("LoRA weight: NAME"): the cells' `loras`, labels, recipes and bad input."""

from __future__ import annotations

import pytest

from studio.core.errors import RequestError
from studio.core.grid import GridPlan, describe_recipe, resolve_field, with_lora_weight
from studio.core.requests import ImageRequest, MusicRequest

BASE = ImageRequest(model="m", prompt="a red fox", seed=11, width=64, height=64,
                    loras=("neon:0.7",))


def test_a_lora_weight_axis_sets_that_loras_weight_and_adds_it_when_absent() -> None:
    plan = GridPlan.from_axes(BASE, ("LoRA weight: ink", "0-1 (+0.5)"), ("lora:neon", "0, 1"))
    assert [c.request.loras for c in plan.cells] == [
        ("neon:0", "ink:0"), ("neon:0", "ink:0.5"), ("neon:0", "ink:1"),
        ("neon:1", "ink:0"), ("neon:1", "ink:0.5"), ("neon:1", "ink:1")]
    assert plan.axes[0] is not None and plan.axes[1] is not None
    assert plan.axes[0].labels == ("LoRA ink: 0", "LoRA ink: 0.5", "LoRA ink: 1")
    assert plan.axes[1].labels == ("LoRA neon: 0", "LoRA neon: 1")
    assert BASE.loras == ("neon:0.7",) and plan.base.loras == ("neon:0.7",)  # the base kept
    assert {c.request.seed for c in plan.cells} == {11}


def test_the_recipe_keeps_the_axis_and_replays_the_same_cells() -> None:
    plan = GridPlan.from_axes(BASE, ("lora weight:ink", "0, 0.25, 1"), count=2)
    recipe = plan.recipe()
    assert recipe["axes"] == [{"axis": "X", "field": "lora:ink", "values": "0, 0.25, 1"}]
    again = GridPlan.from_recipe(recipe)
    assert [c.request for c in again.cells] == [c.request for c in plan.cells]
    assert len(again.cells) == 6
    assert describe_recipe(recipe) == "3 plot, 2 of each: X LoRA ink = 0, 0.25, 1"


def test_with_lora_weight_replaces_in_place_and_keeps_the_others() -> None:
    request = BASE.replace(loras=("a:1", "neon:0.7", "b"))
    assert with_lora_weight(request, "neon", 0.3).loras == ("a:1", "neon:0.3", "b")
    assert with_lora_weight(request, "c", -1.5).loras == ("a:1", "neon:0.7", "b", "c:-1.5")


@pytest.mark.parametrize(
    ("axis", "values", "needle"),
    [
        ("lora weight: ink", "strong", "a LoRA weight is a number, not 'strong'"),
        ("lora weight: ink", "1-0 (+0.5)", "the range '1-0 (+0.5)' gives no values"),
        ("lora weight: ink", "", "has no values"),
        ("lora:", "0, 1", "names one LoRA"),
        ("lora: a:b", "0, 1", "names one LoRA"),
    ],
)
def test_bad_lora_axes_are_one_sentence(axis: str, values: str, needle: str) -> None:
    with pytest.raises(RequestError) as caught:
        GridPlan.from_axes(BASE, (axis, values))
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_lora_the_prompt_tags_is_no_axis_its_tag_would_win() -> None:
    tagged = BASE.replace(prompt="a red fox <lora:ink:0.6>")
    with pytest.raises(RequestError) as caught:
        GridPlan.from_axes(tagged, ("lora weight: ink", "0, 1"))
    assert str(caught.value) == ("The X axis (LoRA ink): the prompt's <lora:ink:…> tag sets its "
                                 "weight; take the tag out (or vary it with Prompt S/R).")
    assert len(GridPlan.from_axes(tagged, ("lora weight: neon", "0, 1")).cells) == 2


def test_only_requests_with_loras_have_lora_axes() -> None:
    assert resolve_field(ImageRequest, "LoRA weight: ink").label == "LoRA ink"
    with pytest.raises(RequestError, match="Unknown grid axis field"):
        resolve_field(MusicRequest, "lora weight: ink")
    with pytest.raises(RequestError, match="LoRA weight: NAME"):  # the choices name it
        resolve_field(ImageRequest, "bogus")


def test_the_schedule_type_is_an_axis() -> None:
    plan = GridPlan.from_axes(BASE.replace(scheduler="Euler"), ("schedule", "Automatic, Karras"))
    assert [c.request.schedule for c in plan.cells] == ["Automatic", "Karras"]
    assert plan.axes[0] is not None and plan.axes[0].labels[1] == "Schedule: Karras"
    with pytest.raises(RequestError, match="Unknown schedule type"):
        GridPlan.from_axes(BASE, ("schedule", "Sideways"))
