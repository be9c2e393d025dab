"""The Gallery tab: the grid over the history, its filters, details, lightbox and trash.

`panel` holds the tab itself; `model` the list model and thumbnails; `filters` the filter
row; `details` the details pane; `lightbox` the full-window view.
"""

from studio.ui.gallery.details import DetailsPane, describe_recipe
from studio.ui.gallery.filters import MODALITIES, FilterRow, Filters
from studio.ui.gallery.lightbox import Lightbox
from studio.ui.gallery.model import (
    THUMB,
    GalleryModel,
    ThumbnailCache,
    describe_size,
    describe_time,
    field_of,
    request_of,
)
from studio.ui.gallery.panel import SEARCH_LIMIT, GalleryPanel

__all__ = [
    "MODALITIES", "SEARCH_LIMIT", "THUMB", "DetailsPane", "FilterRow", "Filters",
    "GalleryModel", "GalleryPanel", "Lightbox", "ThumbnailCache", "describe_recipe",
    "describe_size", "describe_time", "field_of", "request_of",
]
