"""Benchmark the backends side by side: `python benchmarks/bench.py --workload mnist --plot out.png`.

The same as `mlp-backends bench`; the harness is mlp_backends/bench.py, inside
the package (mlp_backends/bench/), so that the installed command has it too.
"""

import sys
from pathlib import Path

# Run from a checkout without installing: the repository root first on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
