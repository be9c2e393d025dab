"""Qt widgets: the main window, one panel per modality, the gallery, settings."""
