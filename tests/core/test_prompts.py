"""The A1111 prompt syntax: weights, schedules, LoRA tags, chunks, as A1111 1.x reads them."""

from __future__ import annotations

import pytest

from studio.core import prompts
from studio.core.prompts import BREAK, Fragment, PromptError


def frags(text: str) -> list[tuple[str, float]]:
    return [(f.text, f.weight) for f in prompts.parse_attention(text)[0]]


# prompt → fragments (A1111's parse_prompt_attention, exact floats)
ATTENTION = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("\\(escaped\\)", [("(escaped)", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1),
      ("hill", 0.55), (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)]),
    ("((a))", [("a", 1.2100000000000002)]),
    ("[word]", [("word", 1 / 1.1)]),
    ("[[word]]", [("word", (1 / 1.1) * (1 / 1.1))]),
    ("(word:1.3)", [("word", 1.3)]),
    ("(word: 1.3 )", [("word", 1.3)]),
    ("((word:1.5))", [("word", 1.5 * 1.1)]),
    # a colon inside the brackets that is not the weight stays text
    ("(a:1.2:3)", [("a:1.2", 3.0)]),
    ("word:1.2", [("word:1.2", 1.0)]),
    ("a:1.2)", [("a:1.2)", 1.0)]),
    ("stray) and ]", [("stray) and ]", 1.0)]),
    ("(a [b) c]", [("a ", 1.1), ("b", 1.0), (" c", 1 / 1.1)]),
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("a BREAKb", [("a BREAKb", 1.0)]),
    ("", [("", 1.0)]),
    ("back\\slash \\\\", [("backslash \\", 1.0)]),
    ("(neg:-0.5)", [("neg", -0.5)]),
]


@pytest.mark.parametrize("text, expected", ATTENTION)
def test_attention_weights_match_a1111(text: str, expected: list[tuple[str, float]]) -> None:
    assert frags(text) == expected


def test_unbalanced_brackets_warn_and_close_at_the_end() -> None:
    fragments, warnings = prompts.parse_attention("a (red [fox")
    assert [(f.text, f.weight) for f in fragments] == [
        ("a ", 1.0), ("red ", 1.1), ("fox", 1.1 * (1 / 1.1))]
    assert len(warnings) == 1 and "never closed" in warnings[0]
    _, warnings = prompts.parse_attention("a red) fox]")
    assert len(warnings) == 1 and ") ]" in warnings[0]
    assert prompts.parse_attention("(a) [b] (c:1.2)")[1] == []


def test_a_weight_that_is_not_a_number_is_text_with_a_warning() -> None:
    # A1111 stops with a Python error on float("1.2.3"); we keep the text and warn.
    fragments, warnings = prompts.parse_attention("(a:1.2.3)")
    assert [(f.text, f.weight) for f in fragments] == [("a:1.2.3", 1.1)]
    assert "not a number" in warnings[0]


def test_break_inside_brackets_is_the_word_as_in_a1111() -> None:
    fragments, warnings = prompts.parse_attention("(a BREAK b)")
    assert [(f.text, f.weight) for f in fragments] == [
        ("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]
    assert not any(f.is_break for f in fragments)
    assert "BREAK inside brackets" in warnings[0]
    assert BREAK.is_break and Fragment("BREAK", -1.0).is_break


# prompt → schedule at 10 steps (A1111's get_learned_conditioning_prompt_schedules)
SCHEDULES_10 = [
    ("test", [(10, "test")]),
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a [b: 3]", [(3, "a "), (10, "a b")]),
    ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    ("[a|(b:1.1)]", [(i, "a" if i % 2 else "(b:1.1)") for i in range(1, 11)]),
    ("[fe|]male", [(i, "female" if i % 2 else "male") for i in range(1, 11)]),
    ("[fe|||]male", [(i, "female" if i % 4 == 1 else "male") for i in range(1, 11)]),
    ("[a::4]", [(4, "a"), (10, "")]),
    ("[a:b:1.0]", [(10, "a")]),  # A1111 1.6+: a "." makes it a fraction (all 10 steps)
    ("[a:b:0]", [(10, "b")]),
    ("[a:b:-0.5]", [(10, "b")]),
    ("[a:b:99]", [(10, "a")]),
    ("[a:b:1e1]", [(10, "a")]),
    # a "|" outside an alternation, or a trailing backslash, makes the grammar fail:
    # A1111 then takes the prompt literally, editing included
    ("[a:b:3] | c", [(10, "[a:b:3] | c")]),
    ("(a|b)", [(10, "(a|b)")]),
    ("[a:b:3] \\", [(10, "[a:b:3] \\")]),
    ("[a:(b:5]", [(10, "[a:(b:5]")]),
    ("[a:b:c]", [(10, "[a:b:c]")]),
    ("\\[a:b:3\\]", [(10, "\\[a:b:3\\]")]),
]


@pytest.mark.parametrize("prompt, expected", SCHEDULES_10)
def test_schedules_match_a1111(prompt: str, expected: list[tuple[int, str]]) -> None:
    assert prompts.prompt_schedule(prompt, 10)[0] == expected


def test_fraction_at_20_steps_and_old_scheduling() -> None:
    assert prompts.prompt_schedule("[a:b:0.5]", 20)[0] == [(10, "a"), (20, "b")]
    assert prompts.prompt_schedule("[a:b:0.33]", 20)[0] == [(6, "a"), (20, "b")]
    # the "use old scheduling" option: below 1 a fraction, else a step ("1.0" = step 1)
    assert prompts.prompt_schedule("[a:b:1.0]", 20, old_scheduling=True)[0] == [
        (1, "a"), (20, "b")]
    assert prompts.prompt_schedule("[a:b:1.0]", 20)[0] == [(20, "a")]


def test_a_grammar_failure_warns_only_when_editing_is_lost() -> None:
    assert prompts.prompt_schedule("[a:b:3] | c", 10)[1]
    assert prompts.prompt_schedule("a | c", 10)[1] == []


def test_parsed_prompt_picks_schedules_by_sampler_step_as_a1111() -> None:
    parsed = prompts.parse("a [cat:dog:0.5] (big:1.2)", 20)
    assert [s.end_at_step for s in parsed.schedules] == [10, 20]
    assert parsed.is_scheduled
    # A1111's sampler compares its 0-based step to the 1-based end step
    assert [parsed.at(i).text for i in (0, 10, 11, 19)] == [
        "a cat (big:1.2)", "a cat (big:1.2)", "a dog (big:1.2)", "a dog (big:1.2)"]
    assert [(f.text, f.weight) for f in parsed.at(11).fragments] == [
        ("a dog ", 1.0), ("big", 1.2)]
    alternating = prompts.parse("[a|b]", 4)
    assert [alternating.at(i).text for i in range(4)] == ["a", "a", "b", "a"]


# ─── LoRA tags ────────────────────────────────────────────────────────────────────────


def test_lora_tags_are_taken_out_with_their_weights() -> None:
    found = prompts.extract_networks("a fox <lora:foxy:0.8>, <lora:Style v2>, "
                                     "<lora:split:0.5:0.25> <lora:named:te=0.3:unet=0.7>")
    assert found.text == "a fox , ,  "
    assert [(r.name, r.weight, r.unet_weight) for r in found.loras] == [
        ("foxy", 0.8, 0.8), ("Style v2", 1.0, 1.0), ("split", 0.5, 0.25), ("named", 0.3, 0.7)]
    assert found.loras[0].pair == ("foxy", 0.8)
    assert found.notes == ()


def test_lyco_is_a_lora_and_hypernetworks_are_noted() -> None:
    found = prompts.extract_networks("<lyco:loha:0.6> x <hypernet:old:1> <foo:bar>")
    assert [(r.name, r.weight, r.kind) for r in found.loras] == [("loha", 0.6, "lyco")]
    assert found.text == " x  "
    assert len(found.notes) == 2
    assert "Hypernetworks are not supported" in found.notes[0]
    assert "<foo:bar>" in found.notes[1]


@pytest.mark.parametrize("prompt, word", [
    ("<lora:fox:strong>", "'strong'"),
    ("<lora:fox:0.5:abc>", "'abc'"),
    ("<lora:fox:te=x>", "'x'"),
    ("<lora:fox:inf>", "'inf'"),
])
def test_a_lora_weight_that_is_not_a_number_is_one_sentence(prompt: str, word: str) -> None:
    with pytest.raises(PromptError) as err:
        prompts.parse(prompt)
    message = str(err.value)
    assert word in message and prompt in message and message.endswith(".")
    assert "\n" not in message


def test_parse_keeps_loras_out_of_the_encoded_text() -> None:
    parsed = prompts.parse("a (red:1.5) fox <lora:x:1>")
    assert parsed.loras[0].name == "x"
    assert [(f.text, f.weight) for f in parsed.fragments] == [
        ("a ", 1.0), ("red", 1.5), (" fox ", 1.0)]


@pytest.mark.parametrize("prompt, plain", [
    ("a (red:1.5) fox <lora:x:1>", "a red fox"),
    ("((masterpiece)), [ugly], \\(cat\\) BREAK dog", "masterpiece, ugly, (cat) dog"),
    ("a [cat:dog:0.5]", "a dog"),
    ("<lora:x:bad> (a fox:1.2)", "a fox"),
    ("", ""),
])
def test_plain_text_drops_the_syntax(prompt: str, plain: str) -> None:
    assert prompts.plain_text(prompt) == plain


# ─── chunks ───────────────────────────────────────────────────────────────────────────


def test_chunks_split_at_75_and_count_as_a1111() -> None:
    fragments = [Fragment("x", 1.0)]
    chunks, count = prompts.chunk_tokens([list(range(100, 180))], fragments, None)
    assert [len(c.tokens) for c in chunks] == [75, 5]
    assert count == 80 and prompts.chunk_limit(count) == 150
    assert prompts.chunk_limit(0) == 75 and prompts.chunk_limit(75) == 75


def test_a_chunk_boundary_moves_back_to_a_near_comma() -> None:
    comma = 9
    ids = [1] * 60 + [comma] + [2] * 20
    chunks, count = prompts.chunk_tokens([ids], [Fragment("x", 1.0)], comma)
    # 61 tokens up to and including the comma stay; the 14 after it move on
    assert [len(c.tokens) for c in chunks] == [61, 20]
    assert chunks[0].tokens[-1] == comma and count == 75 + 20
    far = [1] * 40 + [comma] + [2] * 40  # the comma is 35 tokens back: no move
    chunks, _ = prompts.chunk_tokens([far], [Fragment("x", 1.0)], comma)
    assert [len(c.tokens) for c in chunks] == [75, 6]


def test_break_starts_a_chunk_and_weights_follow_tokens() -> None:
    fragments = [Fragment("a", 1.0), BREAK, Fragment("b", 1.5)]
    chunks, count = prompts.chunk_tokens([[5, 6], [], [7]], fragments, None)
    assert [(c.tokens, c.weights) for c in chunks] == [([5, 6], [1.0, 1.0]), ([7], [1.5])]
    assert count == 76
    assert prompts.chunk_tokens([[]], [Fragment("", 1.0)], None)[0][0].tokens == []
