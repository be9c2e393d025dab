"""Writing presets: plain data, their shapes, and the sentences for bad ones."""

from __future__ import annotations

import pytest

from studio.core import presets
from studio.core.errors import RequestError
from studio.core.requests import TextRequest


def test_every_preset_has_a_system_prompt_and_a_grammar():
    found = presets.all_presets()
    assert [p.id for p in found] == ["haiku", "quatrain", "lyrics", "list:5", "image-prompt",
                                     "story-opening"]
    for preset in found:
        assert preset.system and preset.grammar.startswith("root ::= ")
        assert preset.min_tokens >= 32
        assert presets.get(preset.id) == preset


def test_list_presets_count_their_items():
    seven = presets.get("list:7")
    assert seven is not None and seven.items == 7 and "exactly 7" in seven.system
    assert seven.grammar.count('. " item') == 7 and '"7. " item' in seven.grammar  # 1. .. 7.
    assert presets.get("list") == presets.list_preset(presets.LIST_DEFAULT)
    with pytest.raises(RequestError, match="between 1 and 30 items, not 0"):
        presets.get("list:0")
    with pytest.raises(RequestError, match="list:N"):
        presets.get("list:many")
    with pytest.raises(RequestError, match="Unknown preset 'sonnet'; choose one of haiku"):
        presets.get("sonnet")
    assert presets.get("") is None and presets.get("  ") is None


@pytest.mark.parametrize(("preset_id", "good", "bad"), [
    ("haiku", "Rain on the tin roof\nthe kettle starts to murmur\nnobody answers",
     "Rain falls softly on the roof and the kettle murmurs."),
    ("quatrain", "a\nb\nc\nd", "a\nb\nc"),
    ("lyrics", "[Verse]\na\nb\nc\nd\n\n[Chorus]\ne\nf\ng\nh\n\n[Verse]\ni\nj\nk\nl\n\n"
               "[Chorus]\ne\nf\ng\nh", "[Verse]\na\nb\n\n[Chorus]\nc"),
    ("list:3", "1. Iron Owls\n2. The Quiet Static\n3. Velvet Drift",
     "1. Iron Owls\n2. The Quiet Static\n3. Velvet Drift\n4. One more"),
    ("image-prompt", "a lighthouse at dusk, oil painting, warm light, wide shot",
     "A lighthouse at dusk.\nOil painting, warm light"),
    ("story-opening", "The bottle came in with the tide. Marta did not open it.",
     "Chapter One\n\nThe bottle came in with the tide."),
])
def test_shape_kept_tells_the_form_from_prose(preset_id, good, bad):
    preset = presets.get(preset_id)
    assert presets.shape_kept(preset, good)
    assert not presets.shape_kept(preset, bad)
    assert not presets.shape_kept(preset, "")


def test_the_preset_system_prompt_comes_first_and_keeps_the_writers_own():
    haiku = presets.get("haiku")
    assert presets.system_prompt(haiku, "") == haiku.system
    assert presets.system_prompt(haiku, "About cats.") == f"{haiku.system}\n\nAbout cats."
    assert presets.system_prompt(None, "Be brief.") == "Be brief."


def test_a_preset_is_part_of_the_recipe_and_validated_with_it():
    request = TextRequest(model="builtin:smollm2", prompt="rain", preset="list:4")
    request.validate()
    again = TextRequest.from_dict(request.to_dict())
    assert again == request and again.preset == "list:4"
    with pytest.raises(RequestError, match="Unknown preset"):
        request.replace(preset="ode").validate()
    # a stop string inside the form's own shape could never let it finish: one sentence
    with pytest.raises(RequestError, match=r"haiku form cannot be finished: the stop "
                                           r"string '\\n' is part of its shape"):
        request.replace(preset="haiku", stop=("\n",)).validate()
    with pytest.raises(RequestError, match="','"):
        request.replace(preset="image-prompt", stop=(",",)).validate()
    request.replace(preset="haiku", stop=("\n\n",)).validate()  # a blank line is fine
