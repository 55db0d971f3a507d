"""Coverage-guided fuzzing of the zone reader/writer with atheris (libFuzzer), time-bounded.

Each input is written as a zone file and an edit of two managed TLSA owners is planned and
written out. Allowed outcomes: a :class:`DaneError` (the tool's one-line errors), or a plan
whose output, planned again, needs no further change (the edit is idempotent). Anything else
(another exception, a non-idempotent edit, a hang past --timeout, memory past --rss-mb) is a
crash that libFuzzer saves as an artifact. The seed corpus is tests/corpus/zones.

    python3 benchmarks/fuzz_zone_atheris.py --seconds 120

The parent process runs libFuzzer in a child and prints a JSON summary: executions, coverage
(libFuzzer's edge counter "cov" and feature counter "ft"), corpus size and crashes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "corpus" / "zones"
DICTIONARY = [
    "$ORIGIN ", "$TTL ", "$INCLUDE ", "$GENERATE ", "@", "(", ")", ";", '"', "\\", "\\# ",
    " IN ", " TLSA ", " TYPE52 ", " SOA ", " A ", " TXT ", "3 1 1 ", "2 1 1 ", "_25._tcp.mail",
    "_465._tcp.mail", "mail", "example.com.", "\r\n", "\n", "\t", "1h", "${0,3,d}", "$",
]  # fmt: skip


def _dict_entry(word: str) -> str:
    """libFuzzer dictionary syntax: printable ASCII as is, everything else as \\xNN."""
    return "".join(
        chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in word.encode()
    )


def _child(workdir: Path, libfuzzer_args: list[str]) -> None:
    import io

    import atheris

    with atheris.instrument_imports():
        from certbot_dane_tlsa import dnsname
        from certbot_dane_tlsa.errors import DaneError
        from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
        from certbot_dane_tlsa.zonefile import plan_zone_edit

    origin = dnsname.from_text("example.com.")
    owners = [dnsname.from_text(f"_{p}._tcp.mail.example.com.") for p in (25, 465)]
    desired = {owners[0]: {TlsaRecord(3, 1, 1, b"\x11" * 32)}, owners[1]: set()}
    managed = {o: {TlsaParams(3, 1, 1)} for o in owners}
    zone = workdir / "db.example.com"
    again = workdir / "db.again"

    def one_input(data: bytes) -> None:
        zone.write_bytes(data)
        try:
            edit = plan_zone_edit(zone, origin, desired, managed, serial="increment")
            out = io.BytesIO()
            edit.write_to(out)
            edit.diff()
        except DaneError:
            return
        again.write_bytes(out.getvalue())
        try:
            second = plan_zone_edit(again, origin, desired, managed, serial="increment")
        except DaneError as exc:
            raise AssertionError(f"the edited zone no longer reads: {exc}") from None
        if second.changed:
            raise AssertionError(f"edit is not idempotent: {second.changes}")

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="total fuzzing time")
    parser.add_argument("--timeout", type=int, default=10, help="seconds per input (hang)")
    parser.add_argument("--rss-mb", type=int, default=2048, help="memory limit")
    parser.add_argument("--max-len", type=int, default=4096, help="longest input in bytes")
    parser.add_argument("--artifacts", type=Path, default=None, help="keep crashes here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child is not None:
        _child(args.child, rest)
        return

    with tempfile.TemporaryDirectory(prefix="zone-atheris-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        corpus.mkdir()
        scratch = work / "scratch"
        scratch.mkdir()
        for seed in SEEDS.iterdir():
            shutil.copy(seed, corpus / seed.name)
            shutil.copy(seed, scratch / seed.name)  # $INCLUDE targets of the seeds
        (work / "dict").write_text("".join(f'"{_dict_entry(w)}"\n' for w in DICTIONARY))
        artifacts = args.artifacts or work / "crashes"
        artifacts.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            __file__,
            "--child",
            str(scratch),
            f"-max_total_time={args.seconds}",
            f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_mb}",
            f"-max_len={args.max_len}",
            f"-dict={work / 'dict'}",
            f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1",
            str(corpus),
        ]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, check=False,
            timeout=args.seconds + 300,
        )  # fmt: skip
        log = done.stderr
        crashes = sorted(p.name for p in artifacts.iterdir())
        kept = args.artifacts is not None
        stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", log))
        last = [line for line in log.splitlines() if re.match(r"#\d+\s", line)]
        cov = re.search(r"cov: (\d+) ft: (\d+) corp: (\d+)", last[-1]) if last else None
        summary = {
            "seconds": args.seconds,
            "exit_status": done.returncode,
            "executions": int(stats.get("number_of_executed_units", 0)),
            "executions_per_second": int(stats.get("average_exec_per_sec", 0)),
            "coverage_edges": int(cov.group(1)) if cov else None,
            "coverage_features": int(cov.group(2)) if cov else None,
            "corpus_inputs": int(cov.group(3)) if cov else None,
            "peak_rss_mb": int(stats.get("peak_rss_mb", 0)),
            "crashes": crashes if kept else len(crashes),
        }
        print(json.dumps(summary, indent=2))
        if done.returncode != 0:
            tail = "\n".join(log.splitlines()[-40:])
            print(f"--- libFuzzer stopped with a finding ---\n{tail}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
