"""The manifest: what an index was built with and what it holds, as one typed object.

It is stored as JSON in the sidecar's ``meta`` table, written in each commit's transaction
(so it always describes the committed rows), and copied to ``manifest.json`` for people.
The records inside it belong to the modules that use them: ``model`` to ModelInfo (here),
``vectors`` to stores/local/vectors.py, ``fusion`` to retrieval/fusion.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ModelMismatchError

#: the layout of the manifest and the vectors file (the sidecar's schema has its own version)
FORMAT_VERSION = 2


@dataclass(frozen=True)
class ModelInfo:
    """What an index records about its model; ``identity()`` must match to reuse the index."""

    name: str
    backend: str
    dim: int
    query_prefix: str
    passage_prefix: str
    max_tokens: int
    normalize: bool = True
    source: str = ""
    revision: str = ""

    @classmethod
    def recorded(cls, model: dict) -> ModelInfo:
        """The model an index's manifest records: enough to change the index without loading the model."""
        names = {f.name for f in fields(cls)}
        return cls(**{"query_prefix": "", **{k: v for k, v in model.items() if k in names}})

    def identity(self) -> dict:
        """What the stored vectors depend on (the query prefix does not: it may change at search time)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("source", "revision", "max_tokens", "query_prefix")}


@dataclass(frozen=True)
class Counts:
    files: int = 0
    chunks: int = 0


@dataclass
class Manifest:
    format_version: int
    generation: int
    #: ModelInfo.identity() plus source, revision and max_tokens
    model: dict[str, Any]
    #: chunk_size and chunk_overlap
    chunking: dict[str, int]
    #: how chunk_terms was filled (store.KEYWORD_FORMAT)
    keyword: dict[str, Any]
    created_at: str
    #: the vector index type and its parameters (stores/local/vectors.py); empty before the first vectors
    vectors: dict[str, Any] = field(default_factory=dict)
    #: the hybrid calibration (retrieval/fusion.calibrate) and the chunks changed since it
    fusion: dict[str, Any] = field(default_factory=dict)
    updated_at: str = ""
    counts: Counts = field(default_factory=Counts)
    #: chunk ids keep rising across --rebuild, so an id never names two texts
    last_chunk_id: int = 0
    vectors_sha256: str = ""
    #: the files and folders given to `fsearch index` (source names): what the index may read back (MCP read)
    roots: list[str] = field(default_factory=list)
    #: while a build is unfinished: {"index_type": what it was asked for}; the next run resumes it
    build: dict[str, str] | None = None

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["counts"] = Counts(**data.get("counts", {}))
        return cls(**known)

    def to_json(self, indent: int | None = None) -> str:
        data = asdict(self)
        if self.build is None:
            del data["build"]
        return json.dumps(data, ensure_ascii=False, indent=indent)
def check_model(manifest: Manifest, info: ModelInfo) -> None:
    """Refuse to mix vectors of two models in one index, naming what differs."""
    recorded = manifest.model
    wanted = info.identity()
    diffs = [f"{k}: index {recorded.get(k)!r}, asked {v!r}" for k, v in wanted.items() if recorded.get(k) != v]
    if diffs:
        raise ModelMismatchError(
            f"the index was built with model {recorded.get('name')!r} (dim {recorded.get('dim')}), "
            f"not {info.name!r} (dim {info.dim}): " + "; ".join(diffs),
            hint="drop --model to use the index's own model, or start afresh with `fsearch index PATH --rebuild`",
        )
