"""Plain-Python heart of Studio: requests, results, metadata, outputs, history, settings.

Nothing in this package may import torch, Qt, diffusers or transformers.
"""

# Every request kind registers itself when its class is defined; the explorer's lives in
# its own module, imported here so that Request.from_dict knows it whatever imports first
# (requests.py itself imports no kind module: no cycle).
from studio.core import explore as _explore  # noqa: F401
from studio.core import upscale as _upscale  # noqa: F401
