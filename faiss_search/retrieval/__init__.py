"""Answering a query: the ``Searcher`` (``search.py``), how its legs are fused and weighed (``fusion.py``),
scores people can read (``relevance.py``) and the line each hit is shown by (``snippets.py``)."""
