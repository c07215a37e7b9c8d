"""A local index: a folder of FAISS vectors, a SQLite sidecar and a manifest. Only ``writer.py`` writes it.

Layout::

    manifest.json              human-readable copy of the manifest, rewritten after each commit
    chunks.sqlite              files, chunks (id = FAISS id), chunk_terms (FTS5 keyword index
                               over segmented text, rowid = chunk id) and meta (manifest)
    vectors-<generation>.faiss IndexIDMap2 over a flat, IVF or HNSW inner-product index

The commit point is the SQLite transaction. A writer first writes the new vectors to a
*new* file named for the next generation (temp file, fsync, rename), then commits the
rows together with the new generation, then rewrites manifest.json and deletes the old
vectors file. A crash at any moment leaves SQLite naming a complete vectors file that
matches its rows; files of an unfinished generation are orphans cleaned up next time.

Readers answer every query from one generation: a read transaction pins the rows of one
commit, and the vectors of that same generation are loaded (again) when it differs from
the ones in memory. Chunk ids are never reused, not even by ``--rebuild``, so an id can
never name another text.

Modules: ``folder`` (the names fsearch owns, the marker, claiming a folder), ``sidecar`` (schema,
connections, the committed manifest), ``keyword`` (FTS5 + BM25), ``view`` (lookups a reader and the
writer share), ``reader``, ``writer``, ``vectors`` and ``flatfile`` (the FAISS side), ``migrations``,
``locking``, ``failures`` (a failed write in words) and ``doctor`` (its own checks and repair).
"""
