"""Where the Explore panel used to live; it is now the studio.ui.explore package."""

from studio.ui.explore.panel import ExplorePanel

__all__ = ["ExplorePanel"]
