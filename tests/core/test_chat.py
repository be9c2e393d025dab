"""The conversation model: turns, regenerate, branch, the context policy, save and reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core import chat
from studio.core.errors import RecipeError, RequestError, StudioError
from studio.core.formats.text import read_recipe, save_text
from studio.core.requests import TextRequest
from studio.core.results import Result

SETTINGS = TextRequest(model="builtin:smollm2", system="You are terse.", seed=3,
                       temperature=0.0, preset="")


def answer(request: TextRequest, text: str) -> Result:
    """What an engine would hand back for `request` (the runner resolves the seed)."""
    return Result(request.replace(seed=11), "text", text=text, info={"tokens": 3})


def talk(conversation: chat.Conversation, *pairs: tuple[str, str]) -> None:
    for message, reply in pairs:
        request = conversation.request(message)
        conversation.add(request, answer(request, reply))


def test_messages_alternate_after_the_system_prompt():
    assert chat.messages("Be kind.", ("hi", "hello"), "how are you?") == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you?"},
    ]
    assert chat.messages("", (), "hi") == [{"role": "user", "content": "hi"}]
    assert chat.plain_prompt("S", ("a", "b"), "c") == (
        "S\n\nUser: a\nAssistant: b\nUser: c\nAssistant:")
    assert chat.plain_prompt("", (), "Once upon") == "Once upon"


def test_each_message_is_a_request_with_the_turns_so_far():
    conversation = chat.Conversation(SETTINGS)
    talk(conversation, ("Name a colour.", "Blue."), ("Another?", "Green."))
    request = conversation.request("And a third?")
    assert request.history == ("Name a colour.", "Blue.", "Another?", "Green.")
    assert (request.prompt, request.system, request.seed) == ("And a third?", "You are terse.", 3)
    assert [t.role for t in conversation.turns] == ["user", "assistant"] * 2
    assert conversation.turns[1].seed == 11
    with pytest.raises(RequestError, match="Write a message first"):
        conversation.request("   ")


def test_regenerate_and_branch_change_nothing_until_the_reply_arrives():
    conversation = chat.Conversation(SETTINGS)
    talk(conversation, ("one", "1"), ("two", "2"), ("three", "3"))
    again = conversation.regenerate(seed=5)
    assert (again.prompt, again.history, again.seed) == ("three", ("one", "1", "two", "2"), 5)
    assert len(conversation.turns) == 6  # a failed or stopped run loses nothing
    conversation.add(again, answer(again, "III"))
    assert conversation.history() == ("one", "1", "two", "2", "three", "III")

    edited = conversation.branch(2, "TWO")
    assert (edited.prompt, edited.history) == ("TWO", ("one", "1"))
    assert len(conversation.turns) == 6
    conversation.add(edited, answer(edited, "2!"))
    assert conversation.history() == ("one", "1", "TWO", "2!")  # later turns branched off
    with pytest.raises(RequestError, match="Only your own messages"):
        conversation.branch(1, "x")
    stale = chat.Conversation(SETTINGS).request("elsewhere").replace(history=("x", "y"))
    with pytest.raises(RequestError, match="another conversation"):
        conversation.add(stale, answer(stale, "z"))
    with pytest.raises(RequestError, match="no reply to regenerate"):
        chat.Conversation(SETTINGS).regenerate()


def test_the_oldest_turns_go_first_and_the_system_prompt_stays():
    history = ("a" * 10, "b" * 10, "c" * 10, "d" * 10)

    def count(kept: tuple[str, ...]) -> int:  # 5 for system + new message, 10 a turn
        return 5 + sum(len(t) for t in kept)

    assert chat.fit_history(history, 100, count) == (history, 0)
    assert chat.fit_history(history, 30, count) == (history[2:], 2)
    assert chat.fit_history(history, 5, count) == ((), 4)
    with pytest.raises(RequestError, match=r"too long for this model: 5 tokens .* at most 4"):
        chat.fit_history(history, 4, count)
    assert "oldest turns are dropped first" in chat.POLICY and "system prompt" in chat.POLICY


def test_a_saved_conversation_keeps_every_turn_and_reopens(tmp_path: Path):
    conversation = chat.Conversation(SETTINGS.replace(preset="haiku"))
    talk(conversation, ("Write about rain.", "Rain on the roof\nquiet\nnight"),
         ("Now snow.", "Snow\non\nstone"))
    result = conversation.to_result()
    assert result.request.history == ("Write about rain.", "Rain on the roof\nquiet\nnight")
    (path,) = save_text(result, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "### You\n\nNow snow." in text and "### Assistant\n\nSnow\non\nstone" in text
    assert "**System:** You are terse." in text

    recipe = read_recipe(path)
    assert recipe.request["preset"] == "haiku" and recipe.request["prompt"] == "Now snow."
    assert len(recipe.raw["front_matter"]["chat"]["turns"]) == 4
    again = chat.Conversation.from_file(path)
    assert again.history() == conversation.history()
    assert again.settings.preset == "haiku" and again.settings.prompt == ""
    assert again.turns[-1].seed == 11
    assert again.request("And wind?").history == conversation.history()

    plain = tmp_path / "plain.md"
    plain.write_text("---\nrequest: {\"kind\": \"text\", \"model\": \"m\", \"prompt\": \"p\"}\n"
                     "---\nhello", encoding="utf-8")
    with pytest.raises(RecipeError, match="is a text, not a conversation"):
        chat.Conversation.from_file(plain)
    with pytest.raises(RequestError, match="nothing to save"):
        chat.Conversation(SETTINGS).to_result()


def _history(tmp_path: Path):
    from studio.core.history import History

    return History(tmp_path / "history.sqlite3")


def test_a_conversation_is_one_file_rewritten_as_it_grows(tmp_path: Path):
    out = tmp_path / "outputs"
    history = _history(tmp_path)
    conversation = chat.Conversation(SETTINGS)
    written: list[Path] = []
    for message, reply in (("one", "1"), ("two", "2"), ("three", "3")):
        talk(conversation, (message, reply))
        written.append(chat.save(conversation.to_result(), conversation.file, out, history))
    assert len(set(written)) == 1
    assert sorted(out.rglob("*.md")) == [written[0]]
    rows = history.recent(modality="text")
    assert len(rows) == 1 and rows[0].path == written[0].resolve()
    assert rows[0].request["prompt"] == "three"  # the row follows the file
    again = chat.Conversation.from_file(written[0])
    assert [t.text for t in again.turns] == ["one", "1", "two", "2", "three", "3"]
    assert again.file.path == written[0]
    # a regenerated last reply rewrites the same file
    request = conversation.regenerate(seed=9)
    conversation.add(request, answer(request, "3 again"))
    assert chat.save(conversation.to_result(), conversation.file, out, history) == written[0]
    assert chat.Conversation.from_file(written[0]).turns[-1].text == "3 again"
    history.close()


def test_a_save_that_runs_after_a_later_one_writes_nothing(tmp_path: Path):
    """Saves run on a pool: reply 2's save may start after reply 3's. The file keeps the
    newer conversation, whatever order they run in."""
    out = tmp_path / "outputs"
    history = _history(tmp_path)
    conversation = chat.Conversation(SETTINGS)
    talk(conversation, ("one", "1"))
    first = chat.save(conversation.to_result(), conversation.file, out, history,
                      conversation.file.ticket())
    talk(conversation, ("two", "2"))
    older, older_ticket = conversation.to_result(), conversation.file.ticket()
    talk(conversation, ("three", "3"))
    newer, newer_ticket = conversation.to_result(), conversation.file.ticket()
    assert older_ticket < newer_ticket
    assert chat.save(newer, conversation.file, out, history, newer_ticket) == first
    assert chat.save(older, conversation.file, out, history, older_ticket) == first
    assert [t.text for t in chat.Conversation.from_file(first).turns] == [
        "one", "1", "two", "2", "three", "3"]
    assert history.recent(modality="text")[0].request["prompt"] == "three"
    talk(conversation, ("four", "4"))  # and the next save in order writes as usual
    chat.save(conversation.to_result(), conversation.file, out, history,
              conversation.file.ticket())
    assert chat.Conversation.from_file(first).turns[-1].text == "4"
    history.close()


def test_an_edited_message_branches_into_a_new_file(tmp_path: Path):
    out = tmp_path / "outputs"
    history = _history(tmp_path)
    conversation = chat.Conversation(SETTINGS)
    talk(conversation, ("one", "1"), ("two", "2"))
    first = chat.save(conversation.to_result(), conversation.file, out, history)
    request = conversation.branch(2, "TWO")
    conversation.add(request, answer(request, "II"))
    second = chat.save(conversation.to_result(), conversation.file, out, history)
    assert second != first
    assert [t.text for t in chat.Conversation.from_file(first).turns] == ["one", "1", "two", "2"]
    assert [t.text for t in chat.Conversation.from_file(second).turns] == ["one", "1", "TWO", "II"]
    assert len(history.recent(modality="text")) == 2
    # a file outside the output folder (opened from elsewhere) is never rewritten
    elsewhere = tmp_path / "mine.md"
    elsewhere.write_bytes(second.read_bytes())
    opened = chat.Conversation.from_file(elsewhere)
    talk(opened, ("three", "3"))
    third = chat.save(opened.to_result(), opened.file, out, history)
    assert third.parent.parent == out and elsewhere.read_bytes() == second.read_bytes()
    history.close()


def test_a_crash_mid_write_leaves_the_previous_version(tmp_path: Path, monkeypatch):
    from studio.core import atomic

    out = tmp_path / "outputs"
    conversation = chat.Conversation(SETTINGS)
    talk(conversation, ("one", "1"))
    path = chat.save(conversation.to_result(), conversation.file, out, None)
    before = path.read_bytes()
    talk(conversation, ("two", "2"))

    def crash(_fd: int) -> None:  # the new version is half on disk when the power goes
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", crash)
    with pytest.raises(StudioError, match="Could not save the conversation"):
        chat.save(conversation.to_result(), conversation.file, out, None)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert chat.save(conversation.to_result(), conversation.file, out, None) == path
    assert [t.text for t in chat.Conversation.from_file(path).turns] == ["one", "1", "two", "2"]
