# faiss-cpu's own stubs leave out much of the SWIG API fsearch uses (DirectMap, PyCallbackIOWriter,
# IndexIVF.nprobe, extract_index_ivf ...): mypy checks fsearch against an open module instead.
from typing import Any

def __getattr__(name: str) -> Any: ...
