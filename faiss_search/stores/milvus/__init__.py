"""An fsearch index in Milvus: the same chunks, vectors and manifest, searchable from any machine.

A store address is ``milvus:///path/kb.db`` (Milvus Lite: an embedded database in one file) or
``http(s)://host:19530`` (a Milvus standalone server or cluster), with a collection name. Three
collections hold an index: ``<name>`` the chunks (id = the local chunk id, vector, text, the words
fsearch's segmenter found in it, which Milvus turns into a BM25 sparse vector, source, offsets, line,
page, heading), ``<name>_files`` the files, ``<name>_meta`` the manifest (model, chunking, fusion) and the ledger.

The writer's local index (FAISS + SQLite) is its working copy: it knows what is embedded, so an
update embeds only changed files, and ``push`` sends the difference. Chunk ids only ever rise, so
the ledger's ``last_chunk_id`` hides chunks a push has inserted but not yet published, and its
``retired`` ranges hide the chunks it will delete next; readers filter on both. A push that is
interrupted leaves the published state searchable and whole; the next push finishes it.
"""
