"""builtin:composer: a small event transformer trained on the music21 corpus (no torch here).

tokens (event vocabulary) · model (the network) · compose
(grammar-constrained sampling) · arrange (key, cadence, accompaniment, timing) · render
(MIDI and soundfont audio) · form (phrase plans) · satb (four-part harmoniser) ·
voiceleading (its checker) · engine (ComposerEngine, what the registry loads). The prompt →
controls parser is plain Python in studio/core/composer_prompt.py (the panel reads it).
"""
