"""The explorer's small views bound to a real ExploreSession (no panel around them):
real clicks, key presses and slider moves, checked against the session's state."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from studio.runtime.explore_session import ExploreSession
from studio.ui.explore.anchors import AnchorRow
from studio.ui.explore.blend import BY_HAND_HINT, PAD_HINT, BlendColumn
from tests.ui import close_ctx, make_ctx


@pytest.fixture
def session(qtbot, tmp_path):
    ctx = make_ctx(tmp_path)
    s = ExploreSession(ctx.jobs, ctx.history, lambda: ctx.models)
    s.set_anchors([1, 2], render=False)
    s.set_model("builtin:faces")  # not activated: nothing renders, the state is what counts
    yield s
    close_ctx(ctx, qtbot)


def test_weights_set_by_hand_win_until_the_pad_is_touched(qtbot, session):
    column = BlendColumn(session)
    qtbot.addWidget(column)
    column.resize(360, 600)
    column.show()
    qtbot.waitExposed(column)
    assert [s.value() for s in column.sliders] == [50, 50]
    column.sliders[0].setValue(20)
    assert session.explicit_weights == [20.0, 50.0]
    assert session.point_request().weights == (round(20 / 70, 6), round(50 / 70, 6))
    assert column.hint.text() == BY_HAND_HINT and column.sliders[1].value() == 50
    pad = column.pad
    QTest.mouseClick(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     pad.point_at(0.75, 0.5).toPoint())
    assert session.explicit_weights is None and session.point_request().weights == ()
    assert session.pad[0] == pytest.approx(0.75, abs=0.02)
    assert column.hint.text() == PAD_HINT and column.sliders[1].value() in (74, 75, 76)
    pad.setFocus()
    QTest.keyClick(pad, Qt.Key.Key_Right)  # arrow keys nudge the puck
    assert session.pad[0] == pytest.approx(pad.position()[0]) and session.pad[0] > 0.75


def test_anchor_cards_follow_the_session(qtbot, session):
    row = AnchorRow(session)
    qtbot.addWidget(row)
    row.show()
    assert [c.seed_value() for c in row.cards] == [1, 2]
    qtbot.mouseClick(row.add_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(row.add_button, Qt.MouseButton.LeftButton)
    assert len(session.anchors) == 4 == len(row.cards) and not row.add_button.isEnabled()
    qtbot.mouseClick(row.cards[1].remove, Qt.MouseButton.LeftButton)
    seeds = session.anchor_seeds()
    assert len(row.cards) == 3 and seeds[0] == 1 and 2 not in seeds
    assert [c.title.text() for c in row.cards] == ["Anchor 1", "Anchor 2", "Anchor 3"]
    assert session.anchors[1].seed == row.cards[1].seed_value()  # the cards moved up
    assert all(c.prompt.isHidden() for c in row.cards)  # faces: no text condition
    session.set_model("builtin:eyes")
    assert not any(c.prompt.isHidden() for c in row.cards)
    qtbot.keyClicks(row.cards[2].prompt, "hazel")  # typing is recorded at once
    assert session.anchors[2].prompt == "hazel"
    row.cards[0].seed.edit.setText("")
    assert row.seeds()[0] != -1 and session.anchors[0].seed == row.seeds()[0]
    session.set_anchors([7, 8], ["blue", "green"])  # a recipe: the cards show it
    assert [(c.seed_value(), c.prompt.text()) for c in row.cards] == [(7, "blue"), (8, "green")]
