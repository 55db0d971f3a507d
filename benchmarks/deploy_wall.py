"""Benchmark: `certbot-dane-tlsa deploy` end to end on a small zone, against the baseline script.

Both run as the deploy hook would, as fresh processes, on the same small zone with a new key
each round; neither reloads BIND (the baseline with RELOAD=0, ours with `rndc = ["true"]` and
`verify = false`), so the figure is the tool's own cost: start-up, reading the lineage,
hashing, planning, named-checkzone, the atomic swap. Prints medians and the ratio.

    python3 benchmarks/deploy_wall.py --runs 15
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.pki import make_key, make_pki, write_lineage  # noqa: E402

BASELINE = ROOT / "benchmarks" / "baseline" / "update-tlsa.sh"

ZONE = """\
$TTL 3600
@   IN SOA ns1.example.com. hostmaster.example.com. (
        2024010101 ; Serial
        3600 600 86400 300 )
    IN NS ns1
ns1 IN A 192.0.2.1
mail IN A 192.0.2.25
_25._tcp.mail IN TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000
"""


def small_zone() -> str:
    hosts = "".join(f"h{i} IN A 192.0.2.{i % 250 + 1}\n" for i in range(100))
    return ZONE + hosts


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pki = make_pki("p256", ["mail.example.com"])
        live = write_lineage(tmp / "le", "mail.example.com", pki)
        zone_file = tmp / "db.example.com"
        settings = tmp / "dane-tlsa.toml"
        settings.write_text(
            f'zone = "example.com"\nzone_file = "{zone_file}"\nrndc = ["true"]\n'
            'verify = false\ndynamic = "no"\n'
        )
        # As installed by pip: byte-compiled (this environment may forbid writing .pyc files).
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("RENEWED_LINEAGE", "PYTHONDONTWRITEBYTECODE")
        }
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "certbot_dane_tlsa")],
                       check=True, capture_output=True, env=env)  # fmt: skip
        ours_argv = [sys.executable, "-m", "certbot_dane_tlsa", "deploy", "--config",
                     str(settings), "--lineage", str(live), "-q"]  # fmt: skip
        base_argv = ["bash", str(BASELINE), str(zone_file), "_25._tcp.mail", str(live / "cert.pem")]
        ours, base, bare = [], [], []
        for _ in range(args.runs):
            bare.append(timed([sys.executable, "-c", "pass"], env))
            # A new key each round, so both tools really have a record to change.
            pki = pki.reissue(leaf_key=make_key("p256"))
            write_lineage(tmp / "le", "mail.example.com", pki)
            zone_file.write_text(small_zone())
            base.append(timed(base_argv, env))
            zone_file.write_text(small_zone())
            ours.append(timed(ours_argv, env))
        checkzone = shutil.which("named-checkzone") is not None
        b, o = statistics.median(base), statistics.median(ours)
        print(f"deploy on a {small_zone().count(chr(10))}-line zone, median of {args.runs} runs")
        print(f"  baseline script : {b * 1000:7.1f} ms")
        print(f"  certbot-dane-tlsa: {o * 1000:7.1f} ms (named-checkzone included: {checkzone})")
        print(f"  ratio ours/baseline: {o / b:.2f}")
        z = statistics.median(bare)
        print(f"  for scale: an empty Python process here takes {z * 1000:.1f} ms "
              f"({z / b:.2f} x the baseline)")  # fmt: skip


if __name__ == "__main__":
    main()
