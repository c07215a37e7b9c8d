"""The three collections an index is kept in, and the fields and indexes they are made with."""

from __future__ import annotations

from typing import Any

from ...locations import StoreAddress

#: VARCHAR fields' limit (bytes in Milvus's checks)
MAX_TEXT_BYTES = 65_535
MAX_PATH_BYTES = 4_096
CHUNK_FIELDS = ["text", "source", "start", "end", "line", "page", "heading"]
FILE_FIELDS = ["path", "sha256", "size", "mtime", "chunks", "indexed_at"]
#: how the space-separated ``terms`` field is split: a server's whitespace tokenizer; Milvus Lite has none, and
#: its standard one (``\w+``) splits fsearch's words the same way
KEYWORD_TOKENIZERS = ("whitespace", "standard")
#: FTS5's bm25() constants (Milvus Lite's default k1 is 1.5)
BM25_K1, BM25_B = 1.2, 0.75
#: the files and meta collections hold no vectors, but Milvus requires one field: this constant
PLACEHOLDER = [1.0, 0.0]


def create_collections(client: Any, address: StoreAddress, dim: int) -> None:
    """The three collections and their indexes."""
    from pymilvus import DataType
    from pymilvus.exceptions import MilvusException

    if not client.has_collection(address.collection):
        for tokenizer in KEYWORD_TOKENIZERS:
            try:
                client.create_collection(address.collection, schema=_chunk_schema(dim, tokenizer),
                                         index_params=_chunk_indexes(client))
                break
            except MilvusException as exc:
                if tokenizer == KEYWORD_TOKENIZERS[-1] or "tokenizer" not in str(exc).lower():
                    raise
    _create_table(client, address.files, [("path", MAX_PATH_BYTES, True), ("sha256", 64, False)],
                  [("size", DataType.INT64), ("mtime", DataType.DOUBLE), ("chunks", DataType.INT64),
                   ("indexed_at", DataType.DOUBLE)])
    _create_table(client, address.meta, [("key", 64, True), ("value", MAX_TEXT_BYTES, False)], [])


def _chunk_schema(dim: int, tokenizer: str) -> Any:
    """Chunks: the text as stored, and ``terms``, the words fsearch's own segmenter found (lexical.py),
    space-separated: Milvus's BM25 then sees exactly the words the local FTS5 index sees."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
    schema.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True,
                     analyzer_params={"tokenizer": tokenizer})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("source", DataType.VARCHAR, max_length=MAX_PATH_BYTES)
    for name in ("start", "end", "line", "page"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("heading", DataType.VARCHAR, max_length=MAX_PATH_BYTES)
    schema.add_function(Function(name="terms_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["terms"], output_field_names=["sparse"]))
    return schema


def _chunk_indexes(client: Any) -> Any:
    """Exact inner product, as the local flat index; BM25 with FTS5's k1 and b."""
    indexes = client.prepare_index_params()
    indexes.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    indexes.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                      params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    return indexes


def _create_table(client: Any, name: str, strings: list[tuple[str, int, bool]], numbers: list[tuple[str, Any]]
                  ) -> None:
    """A collection of plain rows (Milvus insists on a vector field: a constant 2-d one)."""
    from pymilvus import DataType, MilvusClient

    if client.has_collection(name):
        return
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    for column, length, primary in strings:
        schema.add_field(column, DataType.VARCHAR, max_length=length, is_primary=primary)
    for column, kind in numbers:
        schema.add_field(column, kind)
    schema.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))
    indexes = client.prepare_index_params()
    indexes.add_index(field_name="placeholder", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=indexes)


def load_collections(client: Any, address: StoreAddress) -> None:
    for name in (address.collection, address.files, address.meta):
        client.load_collection(name)
