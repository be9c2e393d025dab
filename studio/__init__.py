"""Studio: a desktop creative studio for images, music and text made by local generative models."""

__version__ = "0.1.0"
