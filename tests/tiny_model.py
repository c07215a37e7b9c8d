"""A small random-weight model in the real bge-small-zh-v1.5 layout (real config files and Chinese tokenizer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

LAYOUT_FILES = (
    "config.json", "config_sentence_transformers.json", "modules.json", "sentence_bert_config.json",
    "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "README.md",
    "configuration.json", "1_Pooling/config.json",
)
HIDDEN = 512  # the registry says bge-small-zh has 512 dimensions; download checks it


def build_tiny_model(layout: Path, dest: Path) -> Path:
    """Copy the layout and write ``model.safetensors`` for a 1-layer, 32-wide BERT with the real vocabulary."""
    import torch
    from transformers import BertConfig, BertModel

    for name in LAYOUT_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(layout / name, dest / name)
    config = json.loads((dest / "config.json").read_text())
    config.update(hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=8, intermediate_size=64)
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    pooling = json.loads((dest / "1_Pooling/config.json").read_text())
    pooling["word_embedding_dimension"] = HIDDEN
    (dest / "1_Pooling/config.json").write_text(json.dumps(pooling, indent=2))
    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(dest)).save_pretrained(dest, safe_serialization=True)
    return dest


def build_tiny_reranker(layout: Path, dest: Path) -> Path:
    """A cross-encoder folder as bge-reranker-* are laid out (a sequence-classification head with one label),
    1 layer, 32 wide, random weights, the real Chinese vocabulary: it scores pairs, meaninglessly but surely."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    for name in ("special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(layout / name, dest / name)
    config = BertConfig.from_pretrained(layout)
    config.update({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
                   "num_labels": 1, "architectures": ["BertForSequenceClassification"]})
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(dest, safe_serialization=True)
    return dest
