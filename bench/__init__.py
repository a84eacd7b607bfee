"""The performance benchmark: `python -m bench` measures one run, imports and HTTP functions."""
