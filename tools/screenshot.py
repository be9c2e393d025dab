"""Take a screenshot of the real Studio window after generating a picture.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tools/screenshot.py OUT.png

Uses a private, temporary Studio home (your settings and history are untouched),
generates with the built-in sketch model, what a first launch offers (the faces GAN when
its weights are missing, a tiny SD pipeline built into a temp folder when neither is
there), waits for the jobs, grabs the window
with QWidget.grab() and saves the PNG. `--gallery` also saves the Gallery tab beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPT = ("portrait of a person, soft window light, film grain, 85mm, "
          "shallow depth of field")
NEGATIVE = "blurry, low quality"


def wait_for(app, predicate, timeout: float) -> bool:
    """Spin the event loop until predicate() or the timeout (seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.01)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to save the PNG")
    parser.add_argument("--size", default="1400x900", help="window size, WxH")
    parser.add_argument("--gallery", action="store_true", help="also save the Gallery tab")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    home = Path(tempfile.mkdtemp(prefix="studio-shot-"))
    os.environ["STUDIO_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from studio.ui.app import make_application

    app = make_application([])
    from studio.core.catalog import builtin_path
    from studio.core.history import History
    from studio.core.requests import ImageRequest
    from studio.core.settings import Settings
    from studio.runtime.context import AppContext
    from studio.ui.main_window import MainWindow

    model_dirs: list[str] = []
    sketch = builtin_path("builtin:sketch")
    use_sketch = sketch is not None and (sketch / "model_index.json").is_file()
    use_gan = not use_sketch and importlib.util.find_spec("gan_face_generate") is not None
    if not use_gan and not use_sketch:
        from tests.tiny import build_tiny_sd

        model_dirs.append(str(build_tiny_sd(home / "models").parent))
    settings = Settings(output_dir=str(home / "outputs"), model_dirs=model_dirs)
    settings.save()
    ctx = AppContext(settings, History.open_default())
    window = MainWindow(ctx)
    window.resize(width, height)
    window.move(0, 0)
    window.show()
    scanned: list[int] = []
    ctx.catalog_changed.connect(lambda entries: scanned.append(len(entries)))
    ctx.rescan_models()
    wait_for(app, lambda: bool(scanned), 60)

    art = window.art
    mine: list[int] = []  # only the Art panel's jobs count (other panels start their own)
    art.submitted.connect(mine.append)
    finished: list[int] = []
    failed: list[str] = []
    ctx.jobs.job_finished.connect(lambda i, *_a: finished.append(i) if i in mine else None)
    ctx.jobs.job_failed.connect(lambda i, msg: failed.append(msg) if i in mine else None)
    if use_sketch:  # a few prompts first (so the gallery has variety), then the one on screen
        common = {"model": "builtin:sketch", "width": 64, "height": 64, "steps": 20,
                  "guidance": 5.0, "scheduler": "DDIM"}
        requests = [ImageRequest(prompt=prompt, seed=seed, batch_size=4, **common)
                    for prompt, seed in (("a blue car", 3), ("a yellow balloon", 5),
                                         ("a green apple", 8))]
        requests.append(ImageRequest(prompt="a red heart", seed=11, batch_size=16, **common))
    elif use_gan:
        # a small batch first (so the gallery has variety), then the one on screen
        requests = [
            ImageRequest(model="builtin:faces", prompt=PROMPT, seed=7, width=128, height=128,
                         batch_size=4),
            ImageRequest(model="builtin:faces", prompt=PROMPT, seed=20251122, width=128,
                         height=128, batch_size=16),
        ]
    else:
        model = next(e.id for e in ctx.models_for("image") if e.format == "diffusers")
        requests = [ImageRequest(model=model, prompt=PROMPT, negative=NEGATIVE, seed=s,
                                 steps=12, width=128, height=128, batch_size=4)
                    for s in (7, 20251122)]
    for n, request in enumerate(requests, start=1):
        art.apply_request(request)
        art.message.clear_message()
        art.generate_button.click()
        if not wait_for(app, lambda n=n: len(finished) >= n or bool(failed), args.timeout):
            print("screenshot: the job did not finish in time", file=sys.stderr)
            return 1
        if failed:
            print(f"screenshot: generation failed: {failed[0]}", file=sys.stderr)
            return 1
    wait_for(app, lambda: not ctx.jobs.is_busy(), 60)  # let other panels' jobs settle
    window.gallery.refresh()
    wait_for(app, lambda: window.gallery.item_count() > 0, 10)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    window.show_tab("art")
    app.processEvents()
    if not window.grab().save(str(args.out)):
        print(f"screenshot: could not write {args.out}", file=sys.stderr)
        return 1
    print(args.out)
    if args.gallery:
        window.show_tab("gallery")
        window.gallery.select_row(0)
        wait_for(app, lambda: not window.gallery.model.thumbs.is_loading(), 10)
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)
        extra = args.out.with_name(args.out.stem + "-gallery" + args.out.suffix)
        window.grab().save(str(extra))
        print(extra)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
