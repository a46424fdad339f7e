#!/usr/bin/env python3
"""REGISTER with Digest on both sides, and goodput under overload: Switchboard vs Kamailio 5.6.

    python3 benches/register/digest_overload.py              # both parts, about 4 minutes
    python3 benches/register/digest_overload.py --skip-overload

1. Digest ladder (default 5k, 10k, 15k, 20k, 25k/s, 5 s steps), interleaved as run.py does:
   ours from a config copy with a [[sip_users]] entry bench/secret and challenges =
   ["digest-md5"] (SIPp answers MD5 only), SIPp playing reg_digest.xml; Kamailio through the
   peers' `bench.py reg --auth` (its auth module, the config behind the peers' 11,800/s).
   Each stops after its first failing step (run.py's pass rule: < 0.1% failed, >= 90% of the
   offered rate achieved).
2. Overload: the bearer-token REGISTER of run.py offered at 1.5x and 2x a clean rate (--clean,
   default 20,000/s, our clean figure from run.py), 10 s each; goodput = REGISTERs answered 200
   per second of the run. Kamailio the same against its own clean rate (--kamailio-clean,
   default 15,000/s). SIPp shares the 2 cores: say what it reached.

Reuses run.py's machinery (same SIPp flags, CPU accounting, idle-machine wait, cleanup); the
per-source rate limits are off in every config copy (temp_config).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as R  # noqa: E402


def digest_config(src, run_dir):
    path = R.temp_config(src, run_dir)
    text = open(path).read()
    text, n = re.subn(r'(?m)^challenges\s*=.*$', 'challenges = ["digest-md5"]', text)
    if n != 1:
        raise SystemExit("the sample config has no single `challenges =` line")
    text += ('\n[[sip_users]]\nusername = "bench"\npassword = "secret"\nidentity = "bench"\n'
             'account = "AC00000000000000000000000000000001"\n')
    out = os.path.join(run_dir, "switchboard-digest.toml")
    open(out, "w").write(text)
    return out


def ours_digest_step(config, run_dir, rate, count):
    """run.py's step with reg_digest.xml and a one-line injection file (the scenario needs
    no per-user data)."""
    csv = os.path.join(run_dir, "digest.csv")
    with open(csv, "w") as f:
        f.write("SEQUENTIAL\nbench;-;\n")
    return R.ours_step(config, run_dir, None, "switchboard.local", rate, count,
                       scenario=os.path.join(HERE, "reg_digest.xml"), csv_path=csv)


def kamailio_digest_step(peers, rate, count):
    cmd = [sys.executable, os.path.join(peers, "bench.py"), "reg", "--auth", "--rate", str(rate),
           "--count", str(count)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=count / rate + 120)
    js = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not js:
        raise RuntimeError(f"bench.py reg --auth printed no JSON (rc {p.returncode}): {p.stderr[-800:]}")
    j = json.loads(js[-1])
    cpu_s = j["kamailio_cpu_pct"] / 100.0 * j["elapsed_s"]
    return R.step_result("kamailio", rate, count, j["successful"], j["failed"], j["retrans"],
                         j["achieved_rate"], cpu_s, j["kamailio_cpu_pct"], j["sipp_cpu_pct"],
                         j.get("rt_avg"),
                         dict(elapsed_s=j["elapsed_s"], command=" ".join(cmd[1:]),
                              cpu_us_per_register=round(1e6 * cpu_s / max(1, j["successful"]), 1)))


def goodput(r):
    """REGISTERs answered 200 per second of the step."""
    return round(r["successful"] / max(0.001, r.get("elapsed_s") or 1), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="5000,10000,15000,20000,25000")
    ap.add_argument("--step-seconds", type=int, default=5)
    ap.add_argument("--clean", type=int, default=20000, help="our clean bearer REGISTER rate")
    ap.add_argument("--kamailio-clean", type=int, default=15000)
    ap.add_argument("--peers", default=R.PEERS)
    ap.add_argument("--skip-digest", action="store_true")
    ap.add_argument("--skip-overload", action="store_true")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    for tool in ("sipp", "kamailio"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install -y sip-tester kamailio")
    if not os.path.exists(R.BIN):
        raise SystemExit("build first: cargo build --release")
    src = os.path.join(R.REPO, "conf", "switchboard.toml")
    run_dir = tempfile.mkdtemp(prefix="swb-regbench-")
    report = {}
    quiet = R.Quiet(15, 90, 30)
    try:
        if not a.skip_digest:
            dcfg = digest_config(src, run_dir)
            ladder = [int(x) for x in a.rates.split(",")]
            res = R.ramp(ladder, a.step_seconds, [
                ("ours", lambda r, n: ours_digest_step(dcfg, run_dir, r, n)),
                ("kamailio", lambda r, n: kamailio_digest_step(a.peers, r, n)),
            ], quiet)
            report["digest"] = res
            (top_o, clean_o), (top_k, clean_k) = R.best(res["ours"]), R.best(res["kamailio"])
            print("\nDigest REGISTER (MD5, qop=auth): Switchboard")
            print(R.fmt_table(res["ours"]))
            print("Digest REGISTER: Kamailio 5.6 (auth module, 2 workers)")
            print(R.fmt_table(res["kamailio"]))
            report["digest_summary"] = dict(
                ours_max_rate=top_o and top_o["rate"], kamailio_max_rate=top_k and top_k["rate"],
                ours_clean_rate=clean_o and clean_o["rate"],
                kamailio_clean_rate=clean_k and clean_k["rate"],
                ratio=round(top_o["rate"] / top_k["rate"], 2) if top_o and top_k else None, aim=2.0)
            print(R.compact(report["digest_summary"]))
        if not a.skip_overload:
            cfg = R.temp_config(src, run_dir)
            users = R.Users(R.Minter(*minter_args(src)))
            rows = []
            for name, clean in (("ours", a.clean), ("kamailio", a.kamailio_clean)):
                for factor in (1.5, 2.0):
                    rate = int(clean * factor)
                    count = rate * 10
                    if name == "ours":
                        fn = lambda r, n: R.ours_step(cfg, run_dir, users, "switchboard.local", r, n)
                    else:
                        fn = lambda r, n: R.kamailio_step(a.peers, run_dir, r, n, True)
                    r = R.run_step(name, fn, rate, count, quiet)
                    g = goodput(r) if "successful" in r else 0.0
                    rows.append(dict(system=name, clean=clean, factor=factor, offered=rate,
                                     sipp_achieved_attempts=r.get("achieved_rate"),
                                     successful=r.get("successful"), goodput=g,
                                     goodput_of_clean=round(g / clean, 2),
                                     retrans=r.get("retrans"), cpu_pct=r.get("cpu_pct"),
                                     sipp_cpu_pct=r.get("sipp_cpu_pct")))
                    print(R.compact(rows[-1]), flush=True)
            report["overload"] = rows
        if a.json_out:
            json.dump(report, open(a.json_out, "w"), indent=1)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def minter_args(src):
    import tomllib
    cfg = tomllib.load(open(src, "rb"))
    acct = cfg["accounts"][0]
    key = acct["api_keys"][0]
    return acct["sid"], key["sid"], key["secret"]


if __name__ == "__main__":
    main()
