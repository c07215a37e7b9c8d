"""Bringing an index up to date with the user's files: ``pipeline.py`` runs it.

Files are found (``discovery``), sorted into changed and unchanged (``candidates``), read ahead
(``reading``), embedded in windows (``encoding``), streamed to the store with commits along the way
(``stream``), and the hybrid weights measured again when enough changed (``calibration``); the run
says what it did (``reports``).
"""
