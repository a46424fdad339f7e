#!/usr/bin/env python3
"""REGISTER/s over TLS against TCP, same switch, same client, one run (Debian's SIPp has no
TLS, so the client is `examples/stream_register_load.rs`).

    python3 benches/register/tls.py [--rounds 3] [--seconds 5] [--conns 4] [--window 32]

Starts one release switch with a `switchboard cert` development certificate, SIP on a
free port (TCP) and `--sips` (TLS), then alternates TCP and TLS runs: each run opens CONNS
connections (new TLS handshakes each), keeps WINDOW REGISTERs in flight on each, every
REGISTER a distinct user with its own access token, for SECONDS. Prints each run and the
medians and their ratio as one JSON line. 127.0.0.1 only; the processes are stopped.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.path.join(REPO, "target", "release", "switchboard")
LOAD = os.path.join(REPO, "target", "release", "examples", "stream_register_load")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "--bin", "switchboard",
                        "--example", "stream_register_load"], cwd=REPO, check=True)
    work = tempfile.mkdtemp(prefix="swb-tlsbench-")
    sw = None
    try:
        subprocess.run([BIN, "cert", "--host", "localhost", "--out", work], check=True,
                       capture_output=True)
        text = open(os.path.join(REPO, "conf", "switchboard.toml")).read().replace(
            "[server]\n", f'[server]\ntls_cert = "{work}/cert.pem"\ntls_key = "{work}/key.pem"\n', 1)
        conf = os.path.join(work, "sw.toml")
        open(conf, "w").write(text)
        sw = subprocess.Popen([BIN, "run", "-c", conf, "--sip", "127.0.0.1:0", "--http",
                               "127.0.0.1:0", "--sips", "127.0.0.1:0"], cwd=work,
                              env=dict(os.environ, RUST_LOG="warn"), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
        addrs = {}
        for line in sw.stdout:
            m = re.match(r"listening (sip/tcp|sip/tls) (\S+)", line)
            if m:
                addrs[m.group(1)] = m.group(2)
            if line.strip() == "ready":
                break
        runs = {"tcp": [], "tls": []}
        for _ in range(a.rounds):
            for kind in ("tcp", "tls"):
                out = subprocess.run(
                    [LOAD, kind, addrs[f"sip/{kind}"], str(a.conns), str(a.window),
                     str(a.seconds), os.path.join(work, "cert.pem")],
                    capture_output=True, text=True, timeout=a.seconds + 60)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(json.dumps(r))
                runs[kind].append(r["rate"])
                time.sleep(1)
        tcp, tls = statistics.median(runs["tcp"]), statistics.median(runs["tls"])
        print(json.dumps({"tcp_median": tcp, "tls_median": tls,
                          "tls_over_tcp": round(tls / tcp, 2) if tcp else None}))
    finally:
        if sw:
            sw.terminate()
            sw.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
