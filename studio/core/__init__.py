"""Plain-Python heart of Studio: requests, results, metadata, outputs, history, settings.

Nothing in this package may import torch, Qt, diffusers or transformers.
"""

# Every request kind registers itself when its class is defined; the explorer's and the
# upscaler's live in their own modules, which `requests.REQUEST_TYPES` imports the first
# time their kind is asked for, so Request.from_dict knows them whatever imports first
# without this package importing them up front (start-up: the window needs neither).
