#!/usr/bin/env python3
"""Timing and peak-RSS harness for bench/compare.sh.

compare.sh prepares WORK (CA, running multirootca, rp.json, rp-cfssl.json, csr-ROW.json,
sync/ specs, sync-csr/) and calls this with --work WORK --nodecert BIN --runs N.

Wall time and peak RSS come from separate runs, interleaved in the same round. Wall time is
taken here with perf_counter from just before the first process is started to the exit of the
last one, with the processes started directly (for a pipeline both run at once; for the 8
sequential pipelines it spans all 16 processes). Peak RSS comes from a second run of the same
command with every process under GNU time (`/usr/bin/time -f %M -o FILE`), which reports that
process's own peak. (os.wait4 from Python cannot be used for RSS: Linux folds the parent's
high-water RSS into the child at exec, so every child would report at least Python's ~14 MB.)
GNU time is kept out of the timed runs because it adds its own start-up (~1 ms) to both tools,
which compresses the ratio without being part of either.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROWS = ["ecdsa-256", "ecdsa-384", "rsa-2048", "rsa-4096"]
SYNC_N = 8
TIME = "/usr/bin/time"


class Failed(Exception):
    pass


def timed(stages, cwd, label, rss=False):
    """Run a list of pipelines one after another; each pipeline is a list of argv joined by
    pipes (stdout of one into stdin of the next; the last one's stdout is discarded).
    Returns the wall ms, or with rss=True (every process under GNU time) the peak RSS in KB
    over every process."""
    with tempfile.TemporaryDirectory(prefix="rss", dir=cwd) as tmp, \
            open(os.path.join(tmp, "stderr"), "w+b") as err:
        rss_files = []
        t0 = time.perf_counter()
        for s, pipeline in enumerate(stages):
            procs, prev = [], None
            for i, argv in enumerate(pipeline):
                if rss:
                    rf = os.path.join(tmp, f"rss-{s}-{i}")
                    rss_files.append(rf)
                    argv = [TIME, "-f", "%M", "-o", rf] + argv
                last = i == len(pipeline) - 1
                p = subprocess.Popen(
                    argv, cwd=cwd,
                    stdin=prev if prev is not None else subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL if last else subprocess.PIPE, stderr=err)
                if prev is not None:
                    prev.close()
                prev = p.stdout
                procs.append(p)
            rcs = [p.wait() for p in procs]
            if any(rcs):
                err.seek(0)
                msg = err.read().decode(errors="replace")[-3000:]
                raise Failed(f"{label}: exit statuses {rcs} for {pipeline}\n{msg}")
        t1 = time.perf_counter()
        if not rss:
            return (t1 - t0) * 1000.0
        peak = 0
        for rf in rss_files:
            with open(rf) as f:  # "Command exited with ..." may precede the number
                peak = max(peak, int(f.read().split()[-1]))
    return peak


def need(paths, label):
    for p in paths:
        if not os.path.isfile(p) or os.path.getsize(p) == 0:
            raise Failed(f"{label}: {p} was not written")


def clear(paths):
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)


def pair(base, cert=True):
    return ([base + ".pem"] if cert else []) + [base + "-key.pem", base + ".csr"]


def openssl_check(work, cert, key):
    """Untimed independent check: the cert verifies against the CA and matches its key."""
    ca = os.path.join(work, "ca.pem")
    subprocess.run(["openssl", "verify", "-CAfile", ca, cert], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                       check=True, capture_output=True).stdout
    b = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"],
                       check=True, capture_output=True).stdout
    if a != b:
        raise Failed(f"{key} does not match {cert}")


def print_header(hdr):
    """A table's column line and rule, after a blank line."""
    print()
    print(hdr)
    print("-" * len(hdr))


def floor_run(argv, cwd):
    """Runs examples/floor and returns its JSON line."""
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise Failed(f"{' '.join(argv)}: exit {p.returncode}\n{p.stderr[-3000:]}")
    return json.loads(p.stdout)


def median(xs):
    return statistics.median(xs)


def p90(xs):
    """Nearest-rank 90th percentile (with fewer than 10 runs this is the maximum)."""
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--nodecert", required=True)
    ap.add_argument("--floor", required=True, help="target/release/examples/floor")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--cold-runs", type=int, default=50)
    a = ap.parse_args()
    w, nc, out = a.work, a.nodecert, os.path.join(a.work, "out")

    # Each task: name -> (stages, files that must be written, files to check with openssl)
    tasks = {}
    for row in ROWS:
        csr = f"csr-{row}.json"
        tasks[("nodecert", row)] = (
            [[[nc, "gencert", "-config", "rp.json", "-tls-remote-ca", "ca.pem",
               "-bare", f"out/n-{row}", csr]]],
            pair(os.path.join(out, f"n-{row}")))
        tasks[("cfssl", row)] = (
            [[["cfssl", "gencert", "-config", "rp-cfssl.json", "-tls-remote-ca", "ca.pem", csr],
              ["cfssljson", "-bare", f"out/c-{row}"]]],
            pair(os.path.join(out, f"c-{row}")))
        tasks[("nodecert-genkey", row)] = (
            [[[nc, "genkey", "-bare", f"out/ng-{row}", csr]]],
            pair(os.path.join(out, f"ng-{row}"), cert=False))
        tasks[("cfssl-genkey", row)] = (
            [[["cfssl", "genkey", csr], ["cfssljson", "-bare", f"out/cg-{row}"]]],
            pair(os.path.join(out, f"cg-{row}"), cert=False))
    sync_row = f"sync-{SYNC_N}"
    tasks[("nodecert", sync_row)] = (
        [[[nc, "sync", "--force", "sync"]]],
        [f for i in range(1, SYNC_N + 1) for f in pair(os.path.join(out, f"s-node{i}"))])
    tasks[("cfssl", sync_row)] = (
        [[["cfssl", "gencert", "-config", "rp-cfssl.json", "-tls-remote-ca", "ca.pem",
           f"sync-csr/node{i}.json"], ["cfssljson", "-bare", f"out/cs-node{i}"]]
         for i in range(1, SYNC_N + 1)],
        [f for i in range(1, SYNC_N + 1) for f in pair(os.path.join(out, f"cs-node{i}"))])

    rows = ROWS + [sync_row]
    res = {k: [] for k in tasks}
    if a.runs < 30:
        print(f"NOTE: RUNS={a.runs} is a smoke run; use RUNS>=30 (default) for figures, "
              "especially the RSA rows, whose key generation time varies widely.\n")
    print(f"{a.runs} rounds; in each round every row runs both tools (once timed, once under GNU "
          "time for peak RSS), nodecert first in even rounds, cfssl first in odd rounds ...",
          file=sys.stderr)
    for r in range(a.runs):
        for row in rows:
            order = ["nodecert", "cfssl", "nodecert-genkey", "cfssl-genkey"]
            if r % 2:
                order = ["cfssl", "nodecert", "cfssl-genkey", "nodecert-genkey"]
            for tool in order:
                key = (tool, row)
                if key not in tasks:
                    continue
                stages, files = tasks[key]
                label = f"{tool} {row} round {r}"
                clear(files)
                wall = timed(stages, w, label)
                need(files, f"{tool} {row}")
                peak = None
                if "genkey" not in tool:  # RSS is reported for the end-to-end rows
                    clear(files)
                    peak = timed(stages, w, label, rss=True)
                    need(files, f"{tool} {row}")
                res[key].append((wall, peak))
                if r == 0 and files[0].endswith(".pem") and not files[0].endswith("-key.pem"):
                    # first round: every certificate verifies and matches its key
                    for i in range(0, len(files), 3):
                        openssl_check(w, files[i], files[i + 1])
        print(f"  round {r + 1}/{a.runs} done", file=sys.stderr)

    # The floor of each row, from inside a process (examples/floor.rs): key generation alone,
    # and the CA's signing time on an open connection and on a new one.
    print("floor: key generation and the CA's signing time per row ...", file=sys.stderr)
    floor = {}
    for row in ROWS:
        csr = f"csr-{row}.json"
        runs = str(a.runs)
        keygen = floor_run([a.floor, "keygen", csr, runs], w)
        sign = floor_run([a.floor, "sign", "rp.json", "ca.pem", csr, runs], w)
        floor[row] = {**keygen, **sign}

    # Cold start: interleaved too.
    cold = {"nodecert --version": [], "cfssl version": []}
    for r in range(a.cold_runs):
        pairs = [("nodecert --version", [nc, "--version"]), ("cfssl version", ["cfssl", "version"])]
        if r % 2:
            pairs.reverse()
        for name, argv in pairs:
            cold[name].append((timed([[argv]], w, name), timed([[argv]], w, name, rss=True)))

    def ms(xs):
        return [x[0] for x in xs]

    def mb(xs):
        return [x[1] / 1024.0 for x in xs]

    def end_to_end(row):
        """Median wall ms of nodecert and of the cfssl pipeline for row."""
        return median(ms(res[("nodecert", row)])), median(ms(res[("cfssl", row)]))

    print("End to end, wall ms (median / p90) and peak RSS MB (median), "
          f"{a.runs} runs per cell, interleaved")
    print("  nodecert = nodecert gencert -config rp.json -tls-remote-ca ca.pem -bare X csr.json")
    print("  cfssl    = cfssl gencert -config rp-cfssl.json -tls-remote-ca ca.pem csr.json | "
          "cfssljson -bare Y   (RSS: the larger of the two)")
    print(f"  {sync_row}   = nodecert sync --force DIR ({SYNC_N} ecdsa-256 specs, default --parallel)"
          f" vs {SYNC_N} cfssl pipelines one after another")
    hdr = (f"{'row':<10} {'nodecert ms':>16} {'cfssl ms':>16} {'time ratio':>10}"
           f" {'nodecert MB':>11} {'cfssl MB':>9} {'RSS ratio':>9}")
    print_header(hdr)
    for row in rows:
        n, c = res[("nodecert", row)], res[("cfssl", row)]
        nm, cm = median(ms(n)), median(ms(c))
        nr, cr = median(mb(n)), median(mb(c))
        print(f"{row:<10} {nm:>7.1f} / {p90(ms(n)):>6.1f} {cm:>7.1f} / {p90(ms(c)):>6.1f}"
              f" {cm / nm:>9.2f}x {nr:>11.1f} {cr:>9.1f} {cr / nr:>8.2f}x")
    print("time ratio = cfssl median / nodecert median; RSS ratio = cfssl / nodecert (medians); "
          "> 1 means nodecert is faster / smaller")

    print()
    print("Local floor, wall ms (median): genkey = key + CSR written to disk, no network;")
    print("rest = gencert median - genkey median = TLS connect + request + server signing +"
          " checks + writing the cert (a difference of medians: noisy for RSA, may even be < 0)")
    hdr = (f"{'row':<10} {'nodecert genkey':>15} {'nodecert rest':>13}"
           f" {'cfssl genkey':>12} {'cfssl rest':>10}")
    print_header(hdr)
    for row in ROWS:
        ng, cg = median(ms(res[("nodecert-genkey", row)])), median(ms(res[("cfssl-genkey", row)]))
        n, c = end_to_end(row)
        print(f"{row:<10} {ng:>15.1f} {n - ng:>13.1f} {cg:>12.1f} {c - cg:>10.1f}")
    print("nodecert genkey = nodecert genkey -bare F csr.json;"
          " cfssl genkey = cfssl genkey csr.json | cfssljson -bare F")

    print()
    print("Floor per row, ms (medians; examples/floor.rs, inside one process, so no process start):")
    print("  keygen = the key alone; signing = one signing request on an open TLS connection")
    print("  (the CA's work plus one loopback round trip); floor = keygen + signing, what no client")
    print("  can avoid; new conn = the same request on a new connection (+ TCP and the TLS handshake)")
    hdr = (f"{'row':<10} {'keygen':>8} {'signing':>8} {'floor':>8} {'new conn':>9}"
           f" {'nodecert':>9} {'above floor':>11} {'cfssl':>8}")
    print_header(hdr)
    for row in ROWS:
        f = floor[row]
        fl = f["keygen_ms"] + f["warm_ms"]
        n, c = end_to_end(row)
        print(f"{row:<10} {f['keygen_ms']:>8.2f} {f['warm_ms']:>8.2f} {fl:>8.2f}"
              f" {f['cold_ms']:>9.2f} {n:>9.1f} {n - fl:>11.1f} {c:>8.1f}")
    print("above floor = nodecert median - floor: process start and exit, reading the inputs,"
          " the TLS handshake, the checks, writing the files durably")

    print()
    print(f"Cold start, {a.cold_runs} runs each (median / p90 ms, median peak RSS MB):")
    for name, xs in cold.items():
        print(f"  {name:<20} {median(ms(xs)):>6.1f} / {p90(ms(xs)):>6.1f} ms"
              f" {median(mb(xs)):>6.1f} MB")
    print()
    print("Binary size:")
    for name, path in [("nodecert (release)", nc),
                       ("cfssl", which("cfssl")), ("cfssljson", which("cfssljson"))]:
        size = os.path.getsize(path)
        print(f"  {name:<20} {size / 1e6:>6.1f} MB  ({size} bytes, {path})")


def which(name):
    p = shutil.which(name)
    return os.path.realpath(p) if p else name


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
