"""One module per output format: how results are written and how recipes are read back."""
