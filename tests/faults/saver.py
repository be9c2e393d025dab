"""A child process that saves batches of images for ever, until it is killed.

Run as `python -m tests.faults.saver OUT HISTORY`; prints "ready" once it saves. SIGTERM
is handled as the CLI handles it (like Ctrl+C: exit 130); SIGKILL is not handled at all.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import numpy as np

from studio.cli import EXIT_CANCELLED, _sigterm_like_sigint
from studio.core.history import History
from studio.core.outputs import save_and_index
from studio.core.requests import ImageRequest
from studio.core.results import Result


def main(out: Path, history_path: Path) -> int:
    signal.signal(signal.SIGTERM, _sigterm_like_sigint)
    rng = np.random.default_rng()
    history = History(history_path)
    try:  # "ready" inside the try: a signal right after it must still end as a cancel
        print("ready", flush=True)
        for seed in range(10**9):
            request = ImageRequest(model="builtin:faces", prompt="kill test", seed=seed,
                                   width=64, height=64, batch_size=4)
            images = [rng.integers(0, 256, (192, 192, 3), dtype=np.uint8) for _ in range(4)]
            save_and_index(Result(request, "image", images=images), out, history)
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    finally:
        history.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
