"""`studio train RECIPE --data DIR --name NAME [...]`: train or fine-tune a model in the Lab.

    studio train gan --data ~/drawings --name doodles --steps 2000 --resolution 64
    studio train lora --data ~/style --base ~/models/sd15.safetensors --trigger mystyle --name mine
    studio train gan --data ~/drawings --name doodles --check     (the data check only)
    studio train --resume doodles [--steps 4000]                  (go on from the last checkpoint)

The flags come from the training settings' metadata (core/training.py TrainConfig); what is
not given takes the recipe's default. A progress line goes to stderr, the model's path to
stdout. Ctrl+C (or SIGTERM) stops: the last checkpoint is kept, the model is exported, and
`--resume` goes on from there.

`--json` is how the window drives a run (runtime/training.py): one JSON object per line on
stdout (events data, step, samples, checkpoint, paused, status, finished, failed) and
commands on stdin, one a line: "pause", "resume", "stop" ("stop-best" exports the
best-validation checkpoint). stdin closing (the window went away) stops the run the same
way, so it stays resumable.

Bad input (an unknown recipe, a missing folder, a base of the wrong family, nothing usable
in the folder) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from studio.core.errors import RequestError
from studio.core.fields import specs
from studio.core.training import (
    RECIPES,
    SKETCH_WIDTHS,
    TEXT_CONDITIONS,
    RunPaths,
    TrainConfig,
    config_for,
)

if TYPE_CHECKING:  # torch comes with the trainer: `studio train --help` needs none of it
    from studio.core.training import DataReport, StepRecord
    from studio.engines.training.base import TrainEvents

COMMANDS = ("pause", "resume", "stop", "stop-best")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on your own images, tunes or texts "
                                     "(the Lab)")
    p.add_argument("recipe", nargs="?", default=None, choices=sorted(RECIPES),
                   help="what to train: " + "; ".join(f"{r.id}: {r.name}"
                                                      for r in RECIPES.values()))
    p.add_argument("--data", default=None, help="the folder to learn from (only read)")
    p.add_argument("--name", default=None, help="the run's and the model's name")
    p.add_argument("--base", default=None, help="the model to fine-tune (lora, composer, "
                                                "text): a path or builtin:…")
    for name, s in specs(TrainConfig).items():
        if not s.flag:
            continue
        text = s.tip or s.label
        p.add_argument(s.flag, dest=name, default=None,
                       help=(text[:1].lower() + text[1:] + " (default: the recipe's)")
                       .replace("%", "%%"))
    p.add_argument("--trigger", default=None, help="a LoRA's trigger word, put before every "
                                                   "caption")
    p.add_argument("--text", default=None, choices=TEXT_CONDITIONS[1:],
                   help="sketch: the text condition, the frozen packaged MiniLM (default) or "
                        "a small BERT trained with the UNet")
    p.add_argument("--width", default=None, choices=SKETCH_WIDTHS[1:],
                   help="sketch: the UNet's width, standard (6 M parameters, default) or "
                        "wide (9.5 M, about 1.4× the time per step)")
    p.add_argument("--resume", metavar="RUN", default=None,
                   help="go on with the run RUN from its last checkpoint")
    p.add_argument("--check", action="store_true", help="check the data only, train nothing")
    p.add_argument("--export-best", action="store_true",
                   help="export the checkpoint with the best validation loss")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's; 1 is fastest for tiny "
                        "models on busy cores)")
    p.add_argument("--json", action="store_true",
                   help="events as JSON lines on stdout; pause/resume/stop on stdin")
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (default when not a terminal)")
    p.set_defaults(handler=run)


# --------------------------------------------------------------------------- the config


def _given(args: argparse.Namespace) -> dict[str, Any]:
    names = [n for n, s in specs(TrainConfig).items() if s.flag]
    names += ["trigger", "base", "data", "text", "width"]
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def build_config(args: argparse.Namespace) -> TrainConfig:
    """The run's config: a new one from the recipe's defaults and the flags, or (resume)
    the run's own with the flags given on top."""
    if args.resume:
        run = RunPaths(args.resume)
        if not run.config.is_file():
            raise RequestError(f"There is no run named {args.resume!r} to resume "
                               f"(looked in {run.root}).")
        stored = run.read_config()
        if args.recipe and args.recipe != stored.recipe:
            raise RequestError(f"The run {args.resume!r} trains a {stored.recipe}, "
                               f"not a {args.recipe}.")
        merged = {**stored.to_dict(), **_given(args), "name": stored.name}
        config = TrainConfig.from_dict(merged)
    else:
        if not args.recipe:
            raise RequestError("Say what to train: studio train "
                               f"{'|'.join(sorted(RECIPES))} --data DIR --name NAME.")
        values = _given(args)
        if args.name is not None:
            values["name"] = args.name
        if values.get("data"):
            values["data"] = str(Path(values["data"]).expanduser().resolve())
        config = config_for(args.recipe, **values)
    if args.check:
        if not config.data:
            raise RequestError("Choose a data folder to train on (--data DIR).")
    else:
        config.validate()
    return config


# --------------------------------------------------------------------------- events


def report_dict(report: DataReport) -> dict[str, Any]:
    return {**dataclasses.asdict(report), "lines": report.lines()}


def make_events(args: argparse.Namespace, emit: Callable[[dict[str, Any]], None]) -> TrainEvents:
    """Events that print: JSON lines (`emit`) with --json, else a progress line on stderr."""
    from studio.engines.training.base import TrainEvents

    quiet = args.quiet or not sys.stderr.isatty()

    class CliTrainEvents(TrainEvents):
        def on_data(self, report: DataReport) -> None:
            if args.json:
                emit({"event": "data", "report": report_dict(report)})
            elif not args.quiet:  # the data check is worth reading even in a log
                for line in report.lines():
                    print(line, file=sys.stderr, flush=True)

        def on_step(self, record: StepRecord, total: int) -> None:
            if args.json:
                emit({"event": "step", "record": dataclasses.asdict(record), "total": total})
            elif not quiet:
                print("\r" + progress_line(record, total) + "   ", end="", file=sys.stderr,
                      flush=True)
                if record.step >= total:
                    print(file=sys.stderr)

        def on_samples(self, step: int, files: list[Path]) -> None:
            if args.json:
                emit({"event": "samples", "step": step, "files": [str(f) for f in files]})

        def on_checkpoint(self, step: int, path: Path) -> None:
            if args.json:
                emit({"event": "checkpoint", "step": step, "path": str(path)})

        def on_paused(self, paused: bool) -> None:
            if args.json:
                emit({"event": "paused", "paused": paused})

        def on_status(self, text: str) -> None:
            if args.json:
                emit({"event": "status", "text": text})
            elif not quiet:
                print(("\n" if text.startswith("Saved") else "") + text, file=sys.stderr,
                      flush=True)

    return CliTrainEvents()


def progress_line(record: StepRecord, total: int) -> str:
    """ "step 120/2000  loss 0.6931  val 0.7012  3.2 it/s  ETA 9m47s" """
    parts = [f"step {record.step}/{total}", f"loss {record.loss:.4f}"]
    if record.val_loss is not None:
        parts.append(f"val {record.val_loss:.4f}")
    if record.it_s > 0:
        eta = (total - record.step) / record.it_s
        parts += [f"{record.it_s:.2f} it/s", f"ETA {int(eta // 60)}m{int(eta % 60):02d}s"]
    return "  ".join(parts)


def read_commands(stream: TextIO, events: TrainEvents) -> None:
    """stdin lines → pause / resume / stop; the end of stdin stops (see the docstring)."""
    for line in stream:
        word = line.strip().lower()
        if word == "pause":
            events.pause()
        elif word == "resume":
            events.resume()
        elif word in ("stop", "stop-best"):
            # stop-best: the Lab's overfitting offer, export the best-validation checkpoint
            events.export_best = word == "stop-best"  # type: ignore[attr-defined]
            break
    events.cancel_flag.set()
    events.resume()  # a paused run wakes up to stop


# --------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    lock = threading.Lock()

    def emit(obj: dict[str, Any]) -> None:
        with lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    from studio.engines.training.trainer import Trainer

    if args.check:
        report = Trainer.check(config)
        if args.json:
            emit({"event": "data", "report": report_dict(report)})
        else:
            for line in report.lines():
                print(line)
        return 0
    events = make_events(args, emit)
    if args.json:
        threading.Thread(target=read_commands, args=(sys.stdin, events), daemon=True,
                         name="train-commands").start()
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if on_main else None

    def stop(*_: object) -> None:
        events.cancel_flag.set()
        events.resume()

    if on_main:
        signal.signal(signal.SIGINT, stop)
    t0 = time.perf_counter()
    try:
        trainer = Trainer(config, events, device=args.device, threads=args.threads)
        model = trainer.run(resume=bool(args.resume), export_best=args.export_best)
    except Exception as exc:
        if args.json:
            from studio.core.errors import StudioError
            from studio.core.text import first_line

            emit({"event": "failed",
                  "message": str(exc) if isinstance(exc, StudioError) else first_line(exc)})
        raise
    finally:
        if on_main:
            signal.signal(signal.SIGINT, previous)
    state = trainer.paths.read_state().get("state", "finished")
    if args.json:
        emit({"event": "finished", "path": str(model), "state": state,
              "seconds": round(time.perf_counter() - t0, 3)})
    else:
        if state == "stopped" and not args.quiet:
            print(f"Stopped; go on with `studio train --resume {shlex_quote(config.name)}`.",
                  file=sys.stderr)
        print(model)
    return 0


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
