"""Qt plumbing without widgets: the worker thread, the job queue, previews as signals."""
