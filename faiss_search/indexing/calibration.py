"""When a run measures hybrid search's leg weights again (``retrieval/fusion.calibrate`` measures them)."""

from __future__ import annotations

from ..embedding import Embedder
from ..retrieval.fusion import CALIBRATION_VERSION, calibrate
from ..stores import Writer
from .reports import PhaseCallback, quiet

RECALIBRATE_AFTER = 0.1  # of the index's chunks changed since the fusion weights were measured


def record_changes(writer: Writer, changed_chunks: int) -> None:
    """Add ``changed_chunks`` to the chunks changed since the last calibration."""
    fusion = writer.manifest.fusion
    writer.set_fusion({**fusion, "changed_chunks": fusion.get("changed_chunks", 0) + changed_chunks})


def update_calibration(writer: Writer, embedder: Embedder, on_phase: PhaseCallback = quiet) -> None:
    """Measure the fusion weights again once enough of the index has changed (a small edit keeps them)."""
    fusion = writer.manifest.fusion
    current = fusion.get("version") == CALIBRATION_VERSION
    changed = fusion.get("changed_chunks", 0)
    if current and not changed:
        return
    writer.prepare()
    if not current or changed > RECALIBRATE_AFTER * max(writer.chunk_count, 1):
        on_phase("calibrating")
        writer.refresh_term_frequencies()  # before the probes: they run keyword queries
        # the probes' queries are the passage engine's last job: its memory goes before jieba's arrives
        release = getattr(embedder, "release_passage_engine", lambda: None)
        writer.set_fusion({**calibrate(writer, embedder, after_dense=release), "changed_chunks": 0})
