"""Errors that carry one clear sentence for the artist (UI message box, CLI stderr)."""


class StudioError(Exception):
    """Base class: str(error) is a single sentence fit to show a user."""


class RequestError(StudioError, ValueError):
    """A request (or one of its fields) is invalid."""


class ModelError(StudioError):
    """A model could not be found or loaded."""


class RecipeError(StudioError):
    """A file holds no recipe we can read, or it is corrupt."""


class Cancelled(StudioError):  # noqa: N818 - it is a signal, not a failure
    """Raised by an engine when the job's cancel flag is set."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)

