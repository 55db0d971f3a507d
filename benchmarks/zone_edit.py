"""Benchmark: our zone editor against the sed-based baseline script on large zones.

Generates zones of the requested sizes in a temporary directory, then edits a copy of each with
benchmarks/baseline/update-tlsa.sh and another copy with plan_zone_edit + write_to (in a fresh
Python process, so its peak RSS is its own). Prints times, our peak memory and the ratio.

    python3 benchmarks/zone_edit.py --sizes 1000,100000,1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "benchmarks" / "baseline" / "update-tlsa.sh"
OLD_HASH = hashlib.sha256(b"old key").hexdigest()

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from certbot_dane_tlsa import dnsname
from certbot_dane_tlsa.records import TlsaParams, TlsaRecord
from certbot_dane_tlsa.zonefile import plan_zone_edit
t1 = time.perf_counter()
zone, out, hexhash = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
origin = dnsname.from_text("example.com.")
owner = dnsname.from_text("_25._tcp.mail.example.com.")
rec = TlsaRecord(3, 1, 1, bytes.fromhex(hexhash))
managed = {owner: [TlsaParams(3, 1, 1)]}
edit = plan_zone_edit(zone, origin, {owner: [rec]}, managed, serial="increment")
t2 = time.perf_counter()
with out.open("wb") as f:
    edit.write_to(f)
t3 = time.perf_counter()
# VmHWM belongs to this process image; ru_maxrss would include the forking parent's peak.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
rss = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import": t1 - t0, "plan": t2 - t1, "write": t3 - t2, "edit": t3 - t1,
                  "rss_kib": rss, "changed": edit.changed, "serial": edit.new_serial}))
"""


def make_zone(path: Path, records: int) -> None:
    """A realistic mix: A, AAAA, MX, CNAME, TXT with quotes and semicolons, blank owners."""
    with path.open("w") as f:
        f.write(
            "$TTL 3600\n"
            "@\tIN\tSOA\tns1.example.com. hostmaster.example.com. (\n"
            "\t\t\t2024010101 ; Serial\n"
            "\t\t\t7200       ; Refresh\n"
            "\t\t\t3600       ; Retry\n"
            "\t\t\t1209600    ; Expire\n"
            "\t\t\t300 )      ; Negative cache TTL\n"
            "\tIN\tNS\tns1\n\tIN\tNS\tns2\n\tIN\tMX\t10 mail\n"
            "ns1\tIN\tA\t192.0.2.1\nns2\tIN\tA\t192.0.2.2\n"
        )
        half = records // 2
        lines = []
        for i in range(records):
            if i == half:
                lines.append(
                    "mail\tIN\tA\t192.0.2.25\n\tIN\tAAAA\t2001:db8::25\n"
                    f"_25._tcp.mail\tIN\tTLSA\t3 1 1 {OLD_HASH}\n"
                )
            kind = i % 8
            if kind in (0, 1):
                lines.append(f"host{i}\tIN\tA\t10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
            elif kind == 2:
                lines.append(f"\tIN\tAAAA\t2001:db8::{i:x}\n")
            elif kind == 3:
                lines.append(f"mx{i}\t300\tIN\tMX\t10 host{i - 3}\n")
            elif kind == 4:
                lines.append(f'txt{i}\tIN\tTXT\t"v=spf1 ip4:10.0.0.0/8 -all; id={i}" "x"\n')
            elif kind == 5:
                lines.append(f"www{i}\tIN\tCNAME\thost{i - 5}\n")
            elif kind == 6:
                lines.append(f"svc{i}\tIN\t600\tA\t10.1.{i >> 8 & 255}.{i & 255} ; comment\n")
            else:
                lines.append(f"h{i}.sub.example.com.\tIN\tA\t10.2.{i >> 8 & 255}.{i & 255}\n")
            if len(lines) >= 10000:
                f.write("".join(lines))
                lines.clear()
        f.write("".join(lines))


def make_cert(directory: Path) -> tuple[Path, str]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=mail.example.com",
            "-days",
            "30",
        ],
        check=True,
        capture_output=True,
    )
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return cert, hashlib.sha256(der).hexdigest()


def contains(path: Path, text: str) -> bool:
    """grep -q, so the benchmark process itself stays small."""
    return subprocess.run(["grep", "-qF", text, str(path)], check=False).returncode == 0


def run_baseline(zone: Path, work: Path, cert: Path, spki_hash: str) -> float:
    shutil.copy(zone, work)
    t = time.perf_counter()
    subprocess.run(
        [str(BASELINE), str(work), "_25._tcp.mail", str(cert)], check=True, capture_output=True
    )
    elapsed = time.perf_counter() - t
    assert contains(work, spki_hash)
    return elapsed


def run_ours(zone: Path, work: Path, spki_hash: str) -> dict[str, float]:
    """Plan + write_to in a fresh interpreter; returns its timings and peak memory."""
    out = work.with_suffix(".out")
    shutil.copy(zone, work)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(work), str(out), spki_hash],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - t
    data: dict[str, float] = json.loads(proc.stdout)
    assert data["changed"] and contains(out, spki_hash)
    data["proc"] = elapsed
    return data


def run(sizes: list[int], runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="zone-bench-") as tmp:
        d = Path(tmp)
        cert, spki_hash = make_cert(d)
        print(
            f"{'records':>9} {'MB':>6} {'baseline s':>11} {'ours edit s':>12} "
            f"{'ours proc s':>12} {'peak MiB':>9} {'ratio edit':>11} {'ratio proc':>11}"
        )
        for n in sizes:
            zone = d / f"db.{n}"
            make_zone(zone, n)
            size_mb = zone.stat().st_size / 1e6
            base_t = min(
                run_baseline(zone, d / "baseline.zone", cert, spki_hash) for _ in range(runs)
            )
            ours = min(
                (run_ours(zone, d / "ours.zone", spki_hash) for _ in range(runs)),
                key=lambda r: r["edit"],
            )
            print(
                f"{n:>9} {size_mb:>6.1f} {base_t:>11.3f} {ours['edit']:>12.3f} "
                f"{ours['proc']:>12.3f} {ours['rss_kib'] / 1024:>9.1f} "
                f"{ours['edit'] / base_t:>11.2f} {ours['proc'] / base_t:>11.2f}"
            )
            zone.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000,100000,1000000", help="comma-separated record counts"
    )
    parser.add_argument("--runs", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    run([int(s) for s in args.sizes.split(",")], args.runs)


if __name__ == "__main__":
    main()
