"""A build with the tests' fake embedder in a process of its own, for kill and memory measurements.

    python -m tests.stream_driver FOLDER INDEX_DIR [--log FILE] [--delay SECONDS] [--rebuild]
    python -m tests.stream_driver --generate FOLDER MEGABYTES

Settings come from the environment as for fsearch (FSEARCH_COMMIT_EVERY_CHUNKS, ...), and
FSEARCH_CRASH_AT=<point> kills it at that point of the writer (tests/fast_model.py).
``--log`` appends the hash of every text embedded, one line per batch, so a test can
tell whether a committed chunk was ever embedded twice. ``--generate`` writes a corpus of
mixed Chinese and English files of about MEGABYTES.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import sys
import time
from pathlib import Path

ZH = ("知识 检索 系统 文档 向量 模型 离线 安装 配置 用户 数据 搜索 合同 条款 手册 章节 索引 服务 "
      "问题 答案 故障 排查 网络 存储 备份 恢复 权限 日志 性能 内存").split()
EN = ("search engine local index vector model document chunk offline install config user data backup "
      "restore network storage manual section answer question memory log").split()


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def generate(folder: Path, megabytes: float, file_kb: int = 256, seed: int = 0) -> int:
    """Files of ~file_kb: paragraphs of 2-8 sentences mixing Chinese and English words, each numbered (unique)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    target, written, n = int(megabytes * 1024 * 1024), 0, 0
    while written < target:
        paragraphs, size = [], 0
        while size < file_kb * 1024:
            sentences = []
            for _ in range(rng.randint(2, 8)):
                words = [rng.choice(ZH) if rng.random() < 0.6 else rng.choice(EN) + " "
                         for _ in range(rng.randint(8, 30))]
                sentences.append(f"第{n}-{len(paragraphs)}-{len(sentences)}句：" + "".join(words).strip() + "。")
            paragraphs.append("".join(sentences))
            size += len(paragraphs[-1].encode("utf-8")) + 2
        (folder / f"part{n:05d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        written += size
        n += 1
    return n


class LoggingEmbedder:
    """The tests' fake embedder, optionally slowed down, logging what it embeds."""

    def __init__(self, log: Path | None, delay: float, dim: int = 8) -> None:
        from tests.conftest import FakeEmbedder

        self._inner, self._log, self._delay = FakeEmbedder(dim=dim), log, delay
        self.info, self.long_input_policy = self._inner.info, self._inner.long_input_policy

    def encode_passages(self, texts):
        if self._delay:
            time.sleep(self._delay)
        vectors = self._inner.encode_passages(texts)
        if self._log is not None:
            with self._log.open("a", encoding="utf-8") as fh:
                fh.write(" ".join(text_hash(t) for t in texts) + "\n")
        return vectors

    def __getattr__(self, name):
        return getattr(self._inner, name)


def rss_mb(field: str = "VmHWM") -> float:
    """The peak (VmHWM) or current (VmRSS) resident memory of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler:
    """Resident memory each time another ``step`` bytes of the corpus has been read."""

    def __init__(self, step_mb: float) -> None:
        self.step, self.next, self.samples = step_mb * 1024 * 1024, step_mb * 1024 * 1024, []
        self.started = time.perf_counter()

    def __call__(self, progress) -> None:
        if progress.bytes_read >= self.next:
            self.next += self.step
            self.samples.append({"mb_read": round(progress.bytes_read / 1024 / 1024, 1),
                                 "chunks_done": progress.chunks_done, "rss_mb": round(rss_mb("VmRSS"), 1),
                                 "peak_rss_mb": round(rss_mb(), 1),
                                 "seconds": round(time.perf_counter() - self.started, 1)})


def main() -> None:
    from tests.fast_model import crash_at_the_named_point

    crash_at_the_named_point()
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("target")
    parser.add_argument("--log", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--window", type=int, help="chunks embedded (and written) together")
    parser.add_argument("--read-ahead-mb", type=float, help="file bytes read ahead of the embedding")
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--sample-mb", type=float, help="record memory every this many megabytes read")
    parser.add_argument("--dim", type=int, default=8, help="the fake embedder's dimension")
    parser.add_argument("--read-in-processes", action="store_true", help="however small the corpus")
    args = parser.parse_args()
    if args.generate:
        print(generate(args.folder, float(args.target)))
        return
    from faiss_search.config import load_settings
    from faiss_search.indexing import encoding, pipeline, reading

    if args.window:
        encoding.EMBED_WINDOW = args.window
    if args.read_in_processes:
        reading.READ_IN_PROCESSES_ABOVE = 0
    if args.read_ahead_mb:
        reading.READ_AHEAD_BYTES = int(args.read_ahead_mb * 1024 * 1024)
    settings = load_settings(index_dir=Path(args.target))
    sampler = Sampler(args.sample_mb) if args.sample_mb else None
    embedder = LoggingEmbedder(args.log, args.delay, args.dim)
    report = pipeline.index_path(args.folder, settings, embedder, rebuild=args.rebuild, progress=sampler,
                                processes=True)
    readers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the reading processes, if any
    print(json.dumps({**report.to_dict(), "peak_rss_mb": rss_mb(), "readers_peak_rss_mb": readers,
                      "samples": sampler.samples if sampler else []}, ensure_ascii=False))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
