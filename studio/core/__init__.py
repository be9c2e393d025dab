"""Plain-Python heart of Studio: requests, results, metadata, outputs, history, settings.

Nothing in this package may import torch, Qt, diffusers or transformers.
"""
