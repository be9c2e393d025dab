"""`studio chat` with a fed stdin: replies stream, the transcript is saved with its recipe,
`studio info` shows it, `--resume` goes on with it; bad input is one line and the chat
goes on."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from studio.cli import EXIT_BAD_INPUT, main
from studio.core import chat
from studio.core.history import History
from tests.cli.test_gen_text import Terminal
from tests.engines.tiny_text import export_gguf, tiny_gpt2_once

pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp() / "tiny-text-models"
    root.mkdir(exist_ok=True)
    out = root / "tiny-gpt2-chat.native.gguf"
    return out if out.is_file() else export_gguf(tiny_gpt2_once(root, chat=True), out)


def chat_cli(monkeypatch, typed: str, *args: str) -> tuple[int, Terminal]:
    term = Terminal()
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    monkeypatch.setattr(sys, "stdout", term)
    return main(["chat", *args]), term


def test_a_chat_streams_replies_and_saves_every_turn(gguf_file, tmp_path, monkeypatch, capsys):
    code, term = chat_cli(monkeypatch, "Hello there\n\nTell me more\n", "--model", str(gguf_file),
                          "--system", "Be brief.", "--seed", "4", "--max-tokens", "12",
                          "--out", str(tmp_path))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "studio: Write a message first." in err  # the empty line: one sentence, chat goes on
    *_replies, last = term.value().rstrip("\n").split("\n")
    path = Path(last)
    assert path.is_file() and path.suffix == ".md" and tmp_path in path.parents
    assert len(term.writes) > 4  # the replies arrived in pieces

    conversation = chat.Conversation.from_file(path)
    assert [t.role for t in conversation.turns] == ["user", "assistant"] * 2
    assert conversation.turns[0].text == "Hello there"
    assert conversation.turns[2].text == "Tell me more"
    assert conversation.system == "Be brief." and conversation.settings.max_new_tokens == 12
    assert conversation.turns[1].text and conversation.turns[1].text in term.value()
    text = path.read_text(encoding="utf-8")
    assert "### You\n\nTell me more" in text and str(gguf_file) in text

    with History.open_default() as history:
        assert history.find_path(path) is not None

    shown_on = Terminal()
    monkeypatch.setattr(sys, "stdout", shown_on)
    assert main(["info", str(path)]) == 0
    shown = json.loads(shown_on.value())
    turns = shown["raw"]["front_matter"]["chat"]["turns"]
    assert [t["text"] for t in turns[::2]] == ["Hello there", "Tell me more"]
    assert shown["request"]["history"][0] == "Hello there"


def test_the_same_seed_gives_the_same_chat_and_resume_goes_on(gguf_file, tmp_path,
                                                              monkeypatch, capsys):
    args = ("--model", str(gguf_file), "--seed", "9", "--max-tokens", "10", "--out",
            str(tmp_path))
    _, one = chat_cli(monkeypatch, "Hi\n", *args)
    _, two = chat_cli(monkeypatch, "Hi\n", *args)
    first, second = (t.value().rstrip("\n").split("\n") for t in (one, two))
    assert first[:-1] == second[:-1] and first[-1] != second[-1]  # same reply, two files

    saved = chat.Conversation.from_file(Path(first[-1])).history()  # before it goes on
    code, three = chat_cli(monkeypatch, "And then?\n/regen\n", "--resume", first[-1],
                           "--out", str(tmp_path))
    assert code == 0, capsys.readouterr().err
    resumed = chat.Conversation.from_file(Path(three.value().rstrip("\n").split("\n")[-1]))
    assert resumed.history()[:2] == saved
    assert len(resumed.turns) == 4 and resumed.turns[2].text == "And then?"  # regen replaced


def test_presets_apply_and_bad_settings_are_one_line(gguf_file, tmp_path, monkeypatch,
                                                      capsys):
    code, term = chat_cli(monkeypatch, "cats\n", "--model", str(gguf_file), "--preset",
                          "list:3", "--max-tokens", "400", "--seed", "2", "--out",
                          str(tmp_path))
    assert code == 0, capsys.readouterr().err
    saved = chat.Conversation.from_file(Path(term.value().rstrip("\n").split("\n")[-1]))
    reply = saved.turns[-1].text
    assert [line.split(". ")[0] for line in reply.split("\n")] == ["1", "2", "3"]
    assert saved.settings.preset == "list:3"

    empty = tmp_path / "empty"
    code, term = chat_cli(monkeypatch, "hi\n", "--model", str(gguf_file), "--preset", "ode",
                          "--out", str(empty))
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1 and "Unknown preset 'ode'" in err
    code, term = chat_cli(monkeypatch, "", "--model", str(gguf_file), "--out", str(empty))
    assert code == 0 and term.value() == ""
    assert "nothing to save" in capsys.readouterr().err
    assert not any(empty.rglob("*.md"))


def test_resume_goes_on_in_the_same_file(gguf_file, tmp_path, monkeypatch, capsys):
    """`--resume FILE` rewrites FILE (one conversation, one file, one history row), as
    the Chat view does; a FILE outside the output folder is left as it is and the chat
    goes on in a new file, said in one line."""
    out = tmp_path / "out"
    args = ("--model", str(gguf_file), "--seed", "3", "--max-tokens", "8", "--out", str(out))
    _, one = chat_cli(monkeypatch, "Hi\n", *args)
    path = Path(one.value().rstrip("\n").split("\n")[-1])
    files = sorted(out.rglob("*.md"))
    assert files == [path]
    with History.open_default() as history:
        row = history.find_path(path)
        rows = len(history)
    assert row is not None
    inode = path.stat().st_ino

    code, two = chat_cli(monkeypatch, "More\n", "--resume", str(path), "--out", str(out))
    assert code == 0, capsys.readouterr().err
    assert Path(two.value().rstrip("\n").split("\n")[-1]) == path  # the same file, printed
    assert sorted(out.rglob("*.md")) == files  # no new file beside it
    again = chat.Conversation.from_file(path)
    assert [t.text for t in again.turns[::2]] == ["Hi", "More"]
    assert path.stat().st_ino != inode  # a new file renamed over it, not written in place
    with History.open_default() as history:
        assert history.find_path(path) is not None
        assert len(history) == rows  # its row updated, none added

    elsewhere = tmp_path / "kept" / path.name
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(path.read_bytes())
    before = elsewhere.read_bytes()
    code, three = chat_cli(monkeypatch, "Last\n", "--resume", str(elsewhere), "--out", str(out))
    err = capsys.readouterr().err
    assert code == 0, err
    new = Path(three.value().rstrip("\n").split("\n")[-1])
    assert new != elsewhere and out in new.parents and elsewhere.read_bytes() == before
    assert f"{path.name} is outside the output folder" in err
    assert [t.text for t in chat.Conversation.from_file(new).turns[::2]] == ["Hi", "More",
                                                                           "Last"]


def saved_lines(term: Terminal, count: int) -> list[Path]:
    """The last `count` lines of stdout: the files the chat saved, in order."""
    return [Path(line) for line in term.value().rstrip("\n").split("\n")[-count:]]


def test_clear_keeps_the_finished_conversation_and_starts_a_new_file(gguf_file, tmp_path,
                                                                     monkeypatch, capsys):
    """`/clear` leaves the conversation so far saved in its file; the next one is saved in
    a new file, and both are printed at the end, the current one last."""
    out = tmp_path / "out"
    code, term = chat_cli(monkeypatch, "Hi\nAnd more\n/clear\nAgain\n", "--model",
                          str(gguf_file), "--seed", "5", "--max-tokens", "6", "--out", str(out))
    err = capsys.readouterr().err
    assert code == 0, err
    first, second = saved_lines(term, 2)
    assert first != second and sorted(out.rglob("*.md")) == sorted([first, second])
    assert f"{first.name} keeps the one before" in err
    before = chat.Conversation.from_file(first)
    assert [t.text for t in before.turns[::2]] == ["Hi", "And more"]
    assert [t.role for t in before.turns] == ["user", "assistant"] * 2
    after = chat.Conversation.from_file(second)
    assert [t.text for t in after.turns[::2]] == ["Again"] and len(after.turns) == 2
    with History.open_default() as history:
        assert history.find_path(first) is not None and history.find_path(second) is not None
        assert len(history) == 2


def test_every_reply_is_saved_before_the_next_message(gguf_file, tmp_path, monkeypatch,
                                                       capsys):
    """Each finished reply is on disk and in the history before the next line is read,
    in the one file the conversation keeps (rewritten, never a second file)."""
    out = tmp_path / "out"
    seen: list[list[str]] = []

    class Typed(io.StringIO):
        def readline(self, *args: object) -> str:
            files = sorted(out.rglob("*.md"))
            seen.append([t.text for t in chat.Conversation.from_file(files[0]).turns[::2]]
                        if files else [])
            with History.open_default() as history:
                assert all(history.find_path(f) is not None for f in files)
            assert len(files) <= 1
            return super().readline(*args)

    term = Terminal()
    monkeypatch.setattr(sys, "stdin", Typed("Hi\nMore\nLast\n"))
    monkeypatch.setattr(sys, "stdout", term)
    code = main(["chat", "--model", str(gguf_file), "--seed", "6", "--max-tokens", "6",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert seen == [[], ["Hi"], ["Hi", "More"], ["Hi", "More", "Last"]]
    assert saved_lines(term, 1) == sorted(out.rglob("*.md"))


def test_a_killed_chat_keeps_its_finished_turns(gguf_file, tmp_path):
    """The process killed (SIGKILL) while its second reply is on the way: the first turn is
    on disk, whole, and in the history; nothing waited for the end."""
    import os
    import signal
    import subprocess
    import time

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "studio", "chat", "--model", str(gguf_file), "--seed", "7",
           "--max-tokens", "6", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    assert proc.stdin is not None
    proc.stdin.write("Hi\n")
    proc.stdin.flush()
    indexed: list[Path] = []
    deadline = time.monotonic() + 240
    while not indexed and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        with History.open_default() as history:
            indexed = [f for f in out.rglob("*.md") if history.find_path(f) is not None]
    try:
        assert indexed, proc.stderr.read() if proc.poll() is not None else "no save in 240 s"
        proc.stdin.write("Tell me more\n")
        proc.stdin.flush()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    (path,) = sorted(out.rglob("*.md"))
    assert path == indexed[0]
    saved = chat.Conversation.from_file(path)
    assert saved.turns[0].text == "Hi" and saved.turns[1].role == "assistant"
    assert saved.turns[1].text.strip()
    with History.open_default() as history:
        assert history.find_path(path) is not None


def test_a_failed_save_is_one_line_and_the_chat_goes_on(gguf_file, tmp_path, monkeypatch,
                                                        capsys):
    """An output folder that cannot be written: each reply says so in one line, the chat
    goes on, `/clear` keeps the unsaved conversation, and the end says it failed."""
    from studio.cli import EXIT_FAILED

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, term = chat_cli(monkeypatch, "Hi\n/clear\nMore\n", "--model", str(gguf_file),
                          "--seed", "8", "--max-tokens", "4", "--out", str(blocker / "out"))
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert "Traceback" not in err
    assert err.count("the next reply saves it again") == 3  # 2 replies and /clear
    assert err.rstrip("\n").split("\n")[-1].endswith("The last reply is not saved.")
    assert "so it is kept" in err and "starts over" not in err
    assert term.value().count("\n\n") == 2  # both replies were written
