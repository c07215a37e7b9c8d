"""A flat vector index that a writer keeps on disk, not in memory.

The committed generation's file is read where needed (a few rows, or blocks of them);
what the writer adds goes to an unnamed spill file beside it, what it removes to a list
of ids; a commit streams old rows, minus the removed, then the spilled ones into the next
generation's file. So a build's memory does not grow with its vectors (1.5 GB at 1M
384-d chunks), and an edit of a big index does not load it whole.

The file is exactly what ``faiss.write_index`` writes for ``IndexIDMap2(IndexFlatIP)``
(tests compare the bytes), so readers memory-map it with FAISS as before. Ids only ever
increase (chunk ids are never reused), so every file's ids are in ascending order.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, overload

from ...errors import IndexCorruptError

if TYPE_CHECKING:
    import numpy as np

_HEADER = struct.Struct("<iqqq?i")  # d, ntotal, two unused fields, is_trained, metric (inner product = 0)
_UNUSED = 1 << 20
_COUNT = struct.Struct("<Q")
_MAP, _FLAT = b"IxM2", b"IxFI"
_VECTORS_AT = 2 * (4 + _HEADER.size) + _COUNT.size
#: bytes of vectors read, written or searched at a time
BLOCK_BYTES = 8 << 20
_ID_BLOCK = 1 << 20  # ids checked at a time when a file is opened


def _header(dim: int, count: int) -> bytes:
    return _MAP + _HEADER.pack(dim, count, _UNUSED, _UNUSED, True, 0) + \
        _FLAT + _HEADER.pack(dim, count, _UNUSED, _UNUSED, True, 0) + _COUNT.pack(count * dim)


def _read_ids(handle: IO[bytes], at: int, start: int, stop: int) -> np.ndarray:
    """Ids ``start:stop`` of a file whose ids begin at byte ``at``: read, not mapped, so that a whole
    pass (each commit makes one) does not leave every id page resident in the writer."""
    import numpy as np

    return np.frombuffer(os.pread(handle.fileno(), (stop - start) * 8, at + start * 8), dtype=np.int64)


def _rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each of ``wanted`` is in the ascending ``ids`` (-1 where absent), by binary search."""
    import numpy as np

    if not len(ids):
        return np.full(len(wanted), -1, dtype=np.int64)
    rows = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    return np.where(np.asarray(ids[rows]) == wanted, rows, -1)


class FlatFile:
    """Duck-types the parts of a FAISS ``IndexIDMap2`` flat index that ``IndexWriter`` uses."""

    def __init__(self, dim: int, spill_dir: Path, base: Path | None = None) -> None:
        import numpy as np

        self.d = dim
        self._spill_dir = spill_dir
        self._base: IO[bytes] | None = None
        self._base_count = 0
        self._base_ids = np.zeros(0, dtype=np.int64)  # memory-mapped: binary searches touch a few pages
        self._ids_at = 0
        self._removed = np.zeros(0, dtype=np.int64)
        self._spill: IO[bytes] | None = None
        self._spill_ids: list[np.ndarray] = []
        self._spill_count = 0
        if base is not None:
            self._open_base(base)

    # -- the committed file ---------------------------------------------------------------
    def _open_base(self, path: Path) -> None:
        import numpy as np

        handle = path.open("rb")
        head = handle.read(_VECTORS_AT)
        try:
            if len(head) < _VECTORS_AT or head[:4] != _MAP or head[4 + _HEADER.size:8 + _HEADER.size] != _FLAT:
                raise ValueError("not a flat IndexIDMap2 file")
            dim, count, *_ = _HEADER.unpack_from(head, 4)
            if dim != self.d or _COUNT.unpack_from(head, _VECTORS_AT - _COUNT.size)[0] != count * dim:
                raise ValueError(f"{count} vectors of dim {dim}, expected dim {self.d}")
            ids_at = _VECTORS_AT + count * dim * 4
            handle.seek(ids_at)
            if _COUNT.unpack(handle.read(_COUNT.size))[0] != count:
                raise ValueError("id count differs from vector count")
            ids = np.memmap(path, dtype=np.int64, mode="r", offset=ids_at + _COUNT.size, shape=(count,)) \
                if count else np.zeros(0, dtype=np.int64)
            last = np.iinfo(np.int64).min
            for start in range(0, count, _ID_BLOCK):
                block = _read_ids(handle, ids_at + _COUNT.size, start, min(count, start + _ID_BLOCK))
                if block[0] <= last or (len(block) > 1 and not bool((block[1:] > block[:-1]).all())):
                    raise ValueError("ids out of order")
                last = block[-1]
        except (ValueError, struct.error) as exc:
            handle.close()
            raise IndexCorruptError(f"index vectors {path} are damaged ({exc})") from None
        if self._base is not None:
            self._base.close()
        self._base, self._base_count, self._base_ids, self._ids_at = handle, count, ids, ids_at + _COUNT.size

    def _base_id_rows(self, start: int, stop: int) -> np.ndarray:
        assert self._base is not None
        return _read_ids(self._base, self._ids_at, start, stop)

    def _base_rows(self, start: int, stop: int) -> np.ndarray:
        import numpy as np

        assert self._base is not None
        data = os.pread(self._base.fileno(), (stop - start) * self.d * 4, _VECTORS_AT + start * self.d * 4)
        return np.frombuffer(data, dtype=np.float32).reshape(stop - start, self.d)

    def _spill_rows(self, start: int, stop: int) -> np.ndarray:
        import numpy as np

        assert self._spill is not None
        self._spill.flush()
        data = os.pread(self._spill.fileno(), (stop - start) * self.d * 4, start * self.d * 4)
        return np.frombuffer(data, dtype=np.float32).reshape(stop - start, self.d)

    # -- what FAISS offers ----------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return self._base_count + self._spill_count - len(self._removed)

    def add_with_ids(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        import numpy as np

        if self._spill is None:
            self._spill = tempfile.TemporaryFile(dir=self._spill_dir, prefix=".vectors-spill-")
        self._spill.seek(0, os.SEEK_END)
        self._spill.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self._spill_ids.append(np.asarray(ids, dtype=np.int64).copy())
        self._spill_count += len(ids)

    def remove_ids(self, ids: np.ndarray) -> int:
        """Forget these ids (those held); they leave the file at the next ``write``."""
        import numpy as np

        wanted = np.asarray(ids, dtype=np.int64)
        held = wanted[(_rows_of(self._base_ids, wanted) >= 0) | (_rows_of(self._spilled_ids(), wanted) >= 0)]
        before = len(self._removed)
        self._removed = np.union1d(self._removed, held)
        return len(self._removed) - before

    def _spilled_ids(self) -> np.ndarray:
        import numpy as np

        if len(self._spill_ids) > 1:
            self._spill_ids = [np.concatenate(self._spill_ids)]
        return self._spill_ids[0] if self._spill_ids else np.zeros(0, dtype=np.int64)

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        import numpy as np

        wanted = np.asarray([chunk_id], dtype=np.int64)
        if _rows_of(self._removed, wanted)[0] < 0:
            for rows, ids in ((self._spill_rows, self._spilled_ids()), (self._base_rows, self._base_ids)):
                row = int(_rows_of(ids, wanted)[0])
                if row >= 0:
                    return rows(row, row + 1)[0].copy()
        raise KeyError(chunk_id)  # FAISS raises too (a RuntimeError)

    @overload
    def blocks(self, rows: int | None = None, vectors: Literal[True] = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ...

    @overload
    def blocks(self, rows: int | None = None, *, vectors: Literal[False]) -> Iterator[tuple[None, np.ndarray]]: ...

    def blocks(self, rows: int | None = None, vectors: bool = True
               ) -> Iterator[tuple[np.ndarray | None, np.ndarray]]:
        """(vectors, ids) of every row held, ``rows`` (BLOCK_BYTES' worth) at a time, in id order
        (vectors None if not wanted)."""
        rows = rows or max(1, BLOCK_BYTES // (4 * self.d))
        spilled = self._spilled_ids()
        for read, read_ids, count in ((self._base_rows, self._base_id_rows, self._base_count),
                                      (self._spill_rows, lambda start, stop: spilled[start:stop], self._spill_count)):
            for start in range(0, count, rows):
                stop = min(count, start + rows)
                block_ids = read_ids(start, stop)
                block = read(start, stop) if vectors else None
                if len(self._removed):
                    kept = _rows_of(self._removed, block_ids) < 0
                    block, block_ids = (None if block is None else block[kept]), block_ids[kept]
                yield block, block_ids

    def ids(self) -> np.ndarray:
        import numpy as np

        parts = [ids for _, ids in self.blocks(vectors=False)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner-product top-k, block by block (the writer's calibration queries its own state)."""
        import faiss
        import numpy as np

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        best_scores = np.full((len(queries), k), -np.finfo(np.float32).max, dtype=np.float32)  # FAISS's padding
        best_ids = np.full((len(queries), k), -1, dtype=np.int64)
        for vectors, ids in self.blocks():
            if not len(ids):
                continue
            scores, rows = faiss.knn(queries, np.ascontiguousarray(vectors), min(k, len(ids)),
                                     metric=faiss.METRIC_INNER_PRODUCT)
            scores = np.concatenate([best_scores, scores], axis=1)
            every = np.concatenate([best_ids, ids[rows]], axis=1)
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            best_scores, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(every, top, 1)
        return best_scores, best_ids

    # -- commits --------------------------------------------------------------------------
    def write(self, out: IO[bytes]) -> str:
        """Stream the index as it now stands into ``out``, as FAISS would write it; returns its sha256."""
        digest = hashlib.sha256()

        def emit(data: bytes) -> None:
            out.write(data)
            digest.update(data)

        emit(_header(self.d, self.ntotal))
        for vectors, _ in self.blocks():
            emit(vectors.tobytes())
        emit(_COUNT.pack(self.ntotal))
        for _, ids in self.blocks(vectors=False):
            emit(ids.tobytes())
        return digest.hexdigest()

    def rebase(self, path: Path) -> None:
        """``path`` (just committed, from ``write``) is now the file; the spill starts empty."""
        import numpy as np

        self._open_base(path)
        if self._spill is not None:
            self._spill.close()
        self._spill, self._spill_ids, self._spill_count = None, [], 0
        self._removed = np.zeros(0, dtype=np.int64)

    def close(self) -> None:
        for handle in (self._base, self._spill):
            if handle is not None:
                handle.close()
