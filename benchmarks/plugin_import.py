"""Benchmark: what installing the plugin adds to every certbot run.

Certbot imports every installed plugin and calls its ``add_parser_arguments`` on every run,
so that is what we time: a fresh interpreter importing certbot's plugin machinery, with and
without ``certbot_dane_tlsa.plugin`` (plus building its options), median of N runs each.
The budget is 50 ms.

    python3 benchmarks/plugin_import.py --runs 21
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CERTBOT_ONLY = "import certbot.interfaces, certbot.plugins.common, certbot.errors"
WITH_PLUGIN = (
    CERTBOT_ONLY + "\nimport certbot_dane_tlsa.plugin as p\n"
    "p.Installer.add_parser_arguments(lambda *a, **k: None)"
)


def run(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "certbot_dane_tlsa")],
                   check=True, capture_output=True, env=env)  # fmt: skip
    base, plugin = [], []
    for _ in range(args.runs):  # interleaved, so drift in machine load hits both alike
        base.append(run(CERTBOT_ONLY, env))
        plugin.append(run(WITH_PLUGIN, env))
    b, p = statistics.median(base), statistics.median(plugin)
    print(f"median of {args.runs} runs")
    print(f"  certbot's plugin API alone     : {b * 1000:7.1f} ms")
    print(f"  + certbot_dane_tlsa.plugin     : {p * 1000:7.1f} ms")
    print(f"  overhead of the plugin         : {(p - b) * 1000:7.1f} ms (budget 50 ms)")


if __name__ == "__main__":
    main()
