"""builtin:composer: a small event transformer trained on the music21 corpus (no torch here).

tokens (event vocabulary) · prompt (prompt → controls) · model (the network) · compose
(grammar-constrained sampling) · arrange (key, cadence, accompaniment, timing) · render
(MIDI and soundfont audio) · engine (ComposerEngine, what the registry loads).
"""
