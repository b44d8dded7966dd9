"""Run benchmarks: `python -m benchmarks [NAME ...]` (all `bench_*.py` when no name is given).

Each `bench_NAME.py` module defines `main()`, which prints its tables and saves them under
`benchmarks/results/`.
"""

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    available = sorted(
        p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py")
    )
    names = argv or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise SystemExit(f"Unknown benchmark(s) {unknown}; available: {available}.")
    for name in names:
        print(f"== benchmark: {name}", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
