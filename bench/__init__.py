"""The performance benchmark (issue 5): `python -m bench` measures one run, imports and HTTP functions."""
