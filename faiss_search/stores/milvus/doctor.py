"""A collection checked against its own ledger and manifest."""

from __future__ import annotations

from ...locations import StoreAddress
from ..records import DoctorReport
from .ledger import all_ids, scan_rows
from .publish import push, source_index
from .reader import MilvusReader


def check(address: StoreAddress) -> DoctorReport:
    """What is wrong with a collection, measured against its ledger and manifest (no problems: healthy)."""
    reader = MilvusReader(address)
    try:
        with reader.snapshot():  # which turns Milvus failures into StoreError
            manifest = reader.manifest
            return DoctorReport(str(address), _problems(reader), generation=manifest.generation,
                                chunks=manifest.counts.chunks)
    finally:
        reader.close()


def _problems(reader: MilvusReader) -> list[str]:
    manifest, ledger, client = reader.manifest, reader.ledger, reader._client
    problems = []
    hidden = [i for i in all_ids(client, reader.address.collection)
              if i > ledger.last_chunk_id or any(a <= i <= b for a, b in ledger.retired)]
    if hidden:
        problems.append(f"a push was interrupted: {len(hidden)} chunk(s) are stored but not published "
                        "(searches do not see them; `fsearch export` or the same `fsearch index --store` finishes it)")
    sources: dict[str, int] = {}
    for row in scan_rows(client, reader.address.collection, ["source"], ledger.visible()):
        sources[row["source"]] = sources.get(row["source"], 0) + 1
    published = sum(sources.values())
    if published != manifest.counts.chunks:
        problems.append(f"{published} chunk(s) published, the manifest says {manifest.counts.chunks}")
    files = {f.path: f.chunks for f in reader.indexed_files()}
    if len(files) != manifest.counts.files:
        problems.append(f"{len(files)} file row(s), the manifest says {manifest.counts.files}")
    orphans = sorted(set(sources) - set(files))
    if orphans:
        problems.append(f"{len(orphans)} source(s) have chunks but no file row, e.g. {orphans[0]}")
    wrong = sorted(path for path, count in files.items() if sources.get(path, 0) != count)
    if wrong:
        problems.append(f"{len(wrong)} file(s) have another chunk count than their row says, e.g. {wrong[0]}")
    return problems


def repair(address: StoreAddress) -> list[str]:
    """The local index the collection mirrors (on this machine) pushed again: that finishes an interrupted
    push and restores what was lost."""
    folder = source_index(address)
    pushed = push(folder, address)
    return [f"pushed the local index {folder} again: {pushed.chunks_added} chunk(s) sent, "
            f"{pushed.chunks_removed} removed"]
