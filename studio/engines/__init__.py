"""Model adapters (torch, diffusers, transformers); no Qt here.

Each engine loads one model and turns a request into a Result, reporting
through an `Events` object. The same engines serve the GUI worker, the CLI
and the benchmarks.
"""
