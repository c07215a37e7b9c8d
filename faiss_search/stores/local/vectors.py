"""FAISS index types: exact flat search, IVF for very large indexes, HNSW; how each is built and searched.

Ids are chunk ids. Flat and HNSW indexes sit inside an ``IndexIDMap2`` for that; an IVF
index stores ids in its inverted lists itself (an ID map over IVF cannot remove safely),
and gets the map from ids to vectors only while something reconstructs them. A writer
keeps a flat index on disk (``flatfile.FlatFile``); readers memory-map the same file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from .flatfile import FlatFile

if TYPE_CHECKING:
    import numpy as np

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")
#: auto picks IVF above this many chunks: flat answers a query in ~55 ms at 1M chunks on 2 cores
AUTO_IVF_ABOVE = 1_000_000
IVF_MIN_CHUNKS = 10_000  # k-means needs ~39 points per list
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 128


def choose_type(requested: str, chunks: int) -> str:
    if requested not in INDEX_TYPES:
        raise ConfigError(f"unknown index type '{requested}'", hint=f"use one of {', '.join(INDEX_TYPES)}")
    if requested == "auto":
        return "ivf" if chunks > AUTO_IVF_ABOVE else "flat"
    if requested == "ivf" and chunks < IVF_MIN_CHUNKS:
        raise ConfigError(f"an IVF index needs at least {IVF_MIN_CHUNKS} chunks to train on, this build has {chunks}",
                          hint="use --index-type flat (exact, and fast at this size)")
    return requested


def ivf_params(chunks: int) -> dict[str, int]:
    """nlist ~ 4·sqrt(N) lists (at most N/39, k-means' minimum), nprobe 64 (recall@10 0.98 against flat at 1M)."""
    nlist = max(16, min(65536, int(4 * math.sqrt(chunks)), chunks // 39))
    return {"nlist": nlist, "nprobe": min(64, nlist)}


def staging_type(requested: str) -> str:
    """The type a new index grows as while its build runs: IVF (or auto, which may become IVF) starts flat."""
    return "flat" if requested in ("auto", "ivf") else choose_type(requested, 0)


def build(kind: str, dim: int, folder: Path) -> tuple[Any, dict]:
    """A new, empty flat or HNSW index ready for ``add_with_ids``; returns (index, params).

    A flat index is a ``FlatFile``: its vectors stay on disk in ``folder``, not in memory.
    """
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    if kind == "flat":
        return FlatFile(dim, folder), {"type": "flat"}
    inner = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    inner.hnsw.efSearch = HNSW_EF_SEARCH
    return faiss.IndexIDMap2(inner), {"type": "hnsw", "M": HNSW_NEIGHBOURS, "efSearch": HNSW_EF_SEARCH}


#: vectors per list that k-means trains on (faiss warns above 256)
IVF_TRAIN_PER_LIST = 256
ADD_BLOCK = 65536


def flat_to_ivf(flat: FlatFile) -> tuple[Any, dict]:
    """The vectors of a flat index moved into an IVF index trained on an even sample of them.

    Training sees at most IVF_TRAIN_PER_LIST vectors per list; vectors are read from the
    flat file and added in blocks of ADD_BLOCK (never all of them in memory twice). The
    index has no id-to-vector map: FAISS's hash table takes ~75 bytes a chunk (see
    ``allow_reconstruct``).
    """
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    count = flat.ntotal
    params = ivf_params(count)
    step = -(-count // (IVF_TRAIN_PER_LIST * params["nlist"]))
    training, seen = np.empty((-(-count // step), flat.d), dtype=np.float32), 0
    for vectors, _ in flat.blocks(rows=ADD_BLOCK):  # rows 0, step, 2·step ... of the whole index
        rows = vectors[(-seen) % step::step]
        first = -(-seen // step)
        training[first:first + len(rows)] = rows
        seen += len(vectors)
    quantizer = faiss.IndexFlatIP(flat.d)
    ivf = faiss.IndexIVFFlat(quantizer, flat.d, params["nlist"], faiss.METRIC_INNER_PRODUCT)
    ivf.train(training)
    del training
    ivf.nprobe = params["nprobe"]
    for vectors, ids in flat.blocks(rows=ADD_BLOCK):
        ivf.add_with_ids(np.ascontiguousarray(vectors), ids)
    return ivf, {"type": "ivf", **params}


def allow_reconstruct(index: Any, params: dict) -> None:
    """Give an IVF index the id-to-vector map ``reconstruct`` needs, if it has none.

    Only a writer reusing stored vectors needs it, so it is built then (one pass over the
    lists) and dropped again before the index is written (``drop_reconstruct``): readers
    load the file whole, and would each hold the map too.
    """
    import faiss

    if params.get("type") == "ivf":
        ivf = faiss.extract_index_ivf(index)
        if ivf.direct_map.type == faiss.DirectMap.NoMap:
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)


def drop_reconstruct(index: Any, params: dict) -> None:
    """Leave out of the file the map ``allow_reconstruct`` built (older files still carry one)."""
    import faiss

    if params.get("type") == "ivf":
        faiss.extract_index_ivf(index).set_direct_map_type(faiss.DirectMap.NoMap)


def prepare_for_search(index: Any, params: dict) -> None:
    """Search-time knobs are not all stored in the FAISS file: set them from the manifest."""
    import faiss

    if params.get("type") == "ivf":
        faiss.downcast_index(index).nprobe = params["nprobe"]
    elif params.get("type") == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = params["efSearch"]


def remove_ids(index: Any, params: dict, ids: np.ndarray) -> None:
    """IVF with an id map accepts only an id array; without one, a hashed set (an array is scanned per vector)."""
    import faiss

    if params.get("type") == "ivf":
        ivf = faiss.extract_index_ivf(index)
        selector = faiss.IDSelectorArray if ivf.direct_map.type == faiss.DirectMap.Hashtable else \
            faiss.IDSelectorBatch
        index.remove_ids(selector(len(ids), faiss.swig_ptr(ids)))
    else:
        index.remove_ids(ids)


def supports_removal(params: dict) -> bool:
    """HNSW graphs cannot drop nodes; an update that removes chunks rebuilds the graph."""
    return params.get("type") != "hnsw"


def mmap_flags(params: dict) -> int:
    """Flat indexes are mapped with zero copy (instant open, shared page cache); others are read."""
    import faiss

    return faiss.IO_FLAG_MMAP_IFC if params.get("type", "flat") == "flat" else 0


def stored_ids(index: Any, params: dict) -> np.ndarray:
    """Every chunk id the index holds."""
    import faiss
    import numpy as np

    if params.get("type") == "ivf":
        ivf = faiss.extract_index_ivf(index)
        lists = ivf.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(lists.nlist) if lists.list_size(i)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if isinstance(index, FlatFile):
        return index.ids()
    return faiss.vector_to_array(index.id_map)
