"""The writer's on-disk flat index: byte for byte what FAISS writes, and the same answers as FAISS."""

import faiss
import numpy as np
import pytest

from faiss_search.errors import IndexCorruptError
from faiss_search.stores.local.flatfile import FlatFile

DIM = 6


def _vectors(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _written(flat: FlatFile, path) -> bytes:
    with open(path, "wb") as fh:
        digest = flat.write(fh)
    flat.rebase(path)
    data = path.read_bytes()
    import hashlib

    assert hashlib.sha256(data).hexdigest() == digest
    return data


def test_the_file_is_what_faiss_writes_through_adds_removals_and_commits(tmp_path, monkeypatch):
    monkeypatch.setattr("faiss_search.stores.local.flatfile.BLOCK_BYTES", 7 * DIM * 4)  # rows cross block boundaries
    reference = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    flat = FlatFile(DIM, tmp_path)
    assert _written(flat, tmp_path / "g0.faiss") == faiss.serialize_index(reference).tobytes()  # empty

    first, second = _vectors(30, 1), _vectors(25, 2)
    ids1, ids2 = np.arange(1, 31, dtype=np.int64) * 3, np.arange(200, 225, dtype=np.int64)
    for index in (reference, flat):
        index.add_with_ids(first[:10], ids1[:10])
        index.add_with_ids(first[10:], ids1[10:])
    assert _written(flat, tmp_path / "g1.faiss") == faiss.serialize_index(reference).tobytes()

    gone = np.asarray([3, 45, 90, 201, 224, 999], dtype=np.int64)  # in the file, spilled, and never held
    for index in (reference, flat):
        index.add_with_ids(second, ids2)
        index.remove_ids(gone)
    assert flat.ntotal == reference.ntotal == 50
    assert _written(flat, tmp_path / "g2.faiss") == faiss.serialize_index(reference).tobytes()
    reread = faiss.read_index(str(tmp_path / "g2.faiss"), faiss.IO_FLAG_MMAP_IFC)
    assert np.array_equal(faiss.vector_to_array(reread.id_map), flat.ids())


def test_lookups_and_search_answer_as_faiss_does_before_and_after_a_commit(tmp_path):
    reference = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    flat = FlatFile(DIM, tmp_path)
    rows, ids = _vectors(40, 3), np.arange(10, 50, dtype=np.int64)
    queries = _vectors(5, 4)
    for index in (reference, flat):
        index.add_with_ids(rows[:20], ids[:20])
    _written(flat, tmp_path / "g1.faiss")
    for index in (reference, flat):
        index.add_with_ids(rows[20:], ids[20:])
        index.remove_ids(np.asarray([12, 33], dtype=np.int64))
    for k in (1, 10, 60):  # more than the rows held: -1 ids, as FAISS pads
        expected, got = reference.search(queries, k), flat.search(queries, k)
        assert np.array_equal(expected[1], got[1]) and np.allclose(expected[0], got[0], atol=1e-6)
    assert np.array_equal(flat.reconstruct(15), reference.reconstruct(15))  # from the committed file
    assert np.array_equal(flat.reconstruct(45), reference.reconstruct(45))  # from the spill
    for missing in (12, 33, 7, 99):
        with pytest.raises(KeyError):
            flat.reconstruct(missing)


def test_a_damaged_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("faiss_search.stores.local.flatfile._ID_BLOCK", 2)  # ids are checked in blocks: across them too
    good = tmp_path / "good.faiss"
    reference = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    reference.add_with_ids(_vectors(4, 5), np.asarray([1, 2, 3, 4], dtype=np.int64))
    faiss.write_index(reference, str(good))
    data = good.read_bytes()
    backwards = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    backwards.add_with_ids(_vectors(2, 6), np.asarray([5, 1], dtype=np.int64))
    across = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    across.add_with_ids(_vectors(4, 7), np.asarray([1, 3, 2, 4], dtype=np.int64))
    cases = {"truncated": data[:60], "not flat": b"IwFl" + data[4:], "ids out of order":
             faiss.serialize_index(backwards).tobytes(), "out of order across blocks":
             faiss.serialize_index(across).tobytes(), "other dim": faiss.serialize_index(
                 faiss.IndexIDMap2(faiss.IndexFlatIP(DIM + 1))).tobytes()}
    for name, content in cases.items():
        path = tmp_path / f"{name}.faiss"
        path.write_bytes(content)
        with pytest.raises(IndexCorruptError):
            FlatFile(DIM, tmp_path, path)
    assert FlatFile(DIM, tmp_path, good).ntotal == 4


def test_ivf_trains_on_at_most_its_share_per_list_and_holds_every_vector(tmp_path, monkeypatch):
    from faiss_search.stores.local import vectors

    monkeypatch.setattr(vectors, "IVF_TRAIN_PER_LIST", 2)
    monkeypatch.setattr(vectors, "ADD_BLOCK", 999)  # blocks that do not divide the sampling step
    flat = FlatFile(DIM, tmp_path)
    rows = _vectors(20_000, 5)
    flat.add_with_ids(rows, np.arange(20_000, dtype=np.int64) * 2 + 1)
    trained: list[np.ndarray] = []
    original = faiss.IndexIVFFlat.train
    monkeypatch.setattr(faiss.IndexIVFFlat, "train", lambda self, x: (trained.append(x.copy()), original(self, x)))
    ivf, params = vectors.flat_to_ivf(flat)
    assert params["nlist"] == 512 and len(trained[0]) <= 2 * 512  # rounded down, the step took 1,053
    assert np.array_equal(trained[0], rows[::20])  # an even sample: every 20th row, across blocks
    assert ivf.ntotal == 20_000 and ivf.direct_map.type == faiss.DirectMap.NoMap
    ivf.nprobe = params["nlist"]
    _, ids = ivf.search(rows[[7, 19_999]], 1)
    assert ids[:, 0].tolist() == [15, 39_999]
