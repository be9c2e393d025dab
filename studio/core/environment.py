"""One set-up for every Studio process (the CLI and the GUI): offline, quiet, one-line logs.

Called first by both entry points, before torch, transformers or diffusers are imported
(they read these variables at import). It imports none of them: libraries are quietened
through their environment variables, `warnings` filters by module name and logging.

What a person sees on the terminal: progress (on a terminal only), paths on stdout, and
one-line notices (the `studio.notice` logger, e.g. "saved but not indexed"). Library
warnings, progress bars when stderr is not a terminal and tracebacks never get there;
`studio -v` shows everything, and the GUI keeps the details in `STUDIO_HOME/studio.log`.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TextIO

# Messages for the person at the terminal (one line each, shown without -v too).
NOTICE_LOGGER = "studio.notice"
notices = logging.getLogger(NOTICE_LOGGER)

# Libraries whose warnings are noise for an artist (and whose advice is for developers).
NOISY_MODULES = (r"(transformers|diffusers|torch|torchaudio|huggingface_hub|accelerate|"
                 r"tokenizers|safetensors|tqdm|gguf|encodec|music21|pretty_midi)(\..*)?")
LIBRARY_LOGGERS = ("transformers", "diffusers", "huggingface_hub", "accelerate", "torch")
# Messages that reach `warnings` attributed to our own frames (stacklevel) but are the same noise.
NOISY_MESSAGES = (
    r".*requires? (the )?`?torchvision",
    r".*should be kept in float32",
    r".*pad_token_id",
    r"Token indices sequence length",
    r".*weights_only",
)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def setup_environment(*, verbose: bool = False) -> None:
    """Offline by default and quiet; safe to call more than once (later calls add nothing)."""
    if "HF_HUB_OFFLINE" not in os.environ:  # ours, not the user's: a download they ask for may go
        os.environ["STUDIO_HUB_OFFLINE_DEFAULT"] = "1"  # online (studio/core/downloads.py)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("DIFFUSERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if verbose:  # -v: every library says what it has to say
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    if not _stderr_is_terminal():  # bars are for people watching a terminal
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
    quiet_warnings()
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_warnings() -> None:
    """Ignore library warnings (by module) and the known noisy messages (by text)."""
    warnings.filterwarnings("ignore", module=NOISY_MODULES)
    for message in NOISY_MESSAGES:
        warnings.filterwarnings("ignore", message=message)


class _OneLine(logging.Formatter):
    """`studio: warning: <first line>`: no traceback, no logger name."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().strip().splitlines()
        level = "warning" if record.levelno < logging.ERROR else "error"
        return f"studio: {level}: {text[0] if text else ''}"


class _NoticesOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == NOTICE_LOGGER or record.name.startswith(NOTICE_LOGGER + ".")


class _Stderr(logging.StreamHandler):
    """Whatever sys.stderr is when a record comes (tests and tools replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging API
        pass  # a closed or broken stderr: nowhere left to say anything


class _DetailsFile(logging.Handler):
    """The GUI's detailed log, rotated at `max_bytes` (one old file kept); a disk that
    fills up or turns read-only never complains.

    The rotating handler itself (and `logging.handlers`, which imports socket, pickle and
    queue: ~15 ms) is made by the first record, not while the window is starting."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__()
        self.path = path
        self.max_bytes = max_bytes
        self._file: logging.Handler | None = None

    def _target(self) -> logging.Handler:
        if self._file is None:
            import logging.handlers

            class Rotating(logging.handlers.RotatingFileHandler):
                def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
                    pass

            self._file = Rotating(self.path, maxBytes=self.max_bytes, backupCount=1,
                                  encoding="utf-8", delay=True)
            self._file.setFormatter(self.formatter)
        return self._file

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._target().handle(record)
        except Exception:  # logging never raises into the app
            pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging API
        pass

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


_installed: list[logging.Handler] = []


#: libraries that give their root logger a stderr handler of its own and stop propagation
_LIBRARY_LOGGERS = ("transformers", "diffusers")


def _adopt_library_loggers() -> None:
    """Route an already-imported library's records through our handlers, not its own
    stderr handler (which holds whatever stderr was when the library was first imported,
    and would print warnings our policy keeps in the log file)."""
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def configure_logging(*, verbose: bool = False, log_file: Path | None = None) -> None:
    """Send logs where they belong; replaces what an earlier call installed.

    verbose: everything from INFO up on stderr, with tracebacks (for bug reports).
    Otherwise stderr gets the one-line notices only; `log_file` (the GUI's) gets the
    details, tracebacks included.
    """
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()
    _adopt_library_loggers()
    console = _Stderr()
    if verbose:
        console.setLevel(logging.INFO)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        console.setLevel(logging.WARNING)
        console.addFilter(_NoticesOnly())
        console.setFormatter(_OneLine())
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            details = _DetailsFile(log_file, max_bytes=1_000_000)
        except OSError:  # a read-only home: no log file, never a failure
            pass
        else:
            details.setLevel(logging.INFO)
            details.setFormatter(logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s: %(message)s"))
            handlers.append(details)
    for handler in handlers:
        root.addHandler(handler)
        _installed.append(handler)
    root.setLevel(logging.INFO if verbose or log_file is not None else logging.WARNING)
