#!/usr/bin/env python3
"""REGISTER/s with the Redis store: Switchboard (one node, three nodes sharing one Redis) vs
Kamailio 5.6 with usrloc on Redis (db_redis, db_mode=3: answered after Redis stored it), and
bytes per binding in Redis. One run, interleaved per rate.

    python3 benches/register/redis.py [--rates 2000,4000,...] [--seconds 5] [--no-build]

Every step starts a fresh redis-server on a free loopback port (no persistence: both systems
write to Redis before answering, and the disk is left out of the comparison) and fresh
switches or a fresh Kamailio. Our REGISTERs each carry a distinct user's own Twilio-shaped
access token (minted here, as run.py does), so every one is a first registration whose
JWT is verified and whose binding is written to Redis; Kamailio's are distinct users without
authentication (its cheapest path). Three nodes: three switch processes, SIPp split in
three (rate/3 each, disjoint users). A step passes under 0.1% failed and at least 90% of
the offered rate achieved (run.py's rule). Reported per step: achieved rate, CPU % of the
switch(es), Redis and Kamailio over the step, so what limited it is visible.

Memory: Redis `used_memory` before and after 100,000 distinct registrations, per binding,
for ours (one node) and for Kamailio.

Bounds: 127.0.0.1 only; each step at most rate*seconds REGISTERs; SIPp's -timeout plus a
hard bound; every process started is stopped by PID. Python standard library only.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as R  # noqa: E402  (the REGISTER bench's minting, SIPp and /proc helpers)

KAM_CFG = os.path.join(HERE, "kamailio-redis.cfg")
KAM_SCENARIO = os.path.normpath(os.path.join(R.PEERS, "reg_noauth.xml"))


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    def __init__(self, run_dir):
        self.port = free_tcp_port()
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=run_dir)
        self.p = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if self.cli("PING").strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args],
                              capture_output=True, text=True).stdout

    def used_memory(self):
        for line in self.cli("INFO", "memory").splitlines():
            if line.startswith("used_memory:"):
                return int(line.split(":")[1])
        return 0

    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def stop(self):
        R.stop_proc(self.p)
        shutil.rmtree(self.dir, ignore_errors=True)


def cluster_config(src, run_dir, redis):
    text = open(src).read()
    text = text.replace('[store]\nkind = "memory"\n',
                        f'[store]\nkind = "redis"\nurl = "{redis.url()}"\nkey_prefix = "sb"\n', 1)
    text = text.replace('[cluster]\nnode_id = "local"\n',
                        '[cluster]\nnode_id = "local"\npeers_cidrs = ["127.0.0.0/8"]\n', 1)
    if 'kind = "redis"' not in text or "peers_cidrs = [\"127" not in text:
        raise SystemExit("the sample config's [store] or [cluster] changed shape")
    path = os.path.join(run_dir, f"switchboard-redis-{redis.port}.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


class Node:
    """`switchboard run --node ID` on a free port."""

    def __init__(self, config, run_dir, node):
        env = dict(os.environ, RUST_LOG="warn")
        self.err = open(os.path.join(run_dir, f"node-{node}.log"), "w")
        self.p = subprocess.Popen([R.BIN, "run", "-c", config, "--node", node, "--sip",
                                   "127.0.0.1:0", "--http", "127.0.0.1:0"], cwd=R.REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.pid, self.addr = self.p.pid, None
        deadline = time.time() + 20
        for line in self.p.stdout:
            if line.startswith("listening sip/udp "):
                host, port = line.split()[2].rsplit(":", 1)
                self.addr = (host, int(port))
            if line.strip() == "ready" or time.time() > deadline:
                break
        if self.addr is None or self.p.poll() is not None:
            raise RuntimeError(f"node {node} did not start; see {self.err.name}")
        # Keep draining stdout so the pipe never fills.
        import threading
        threading.Thread(target=lambda: [None for _ in self.p.stdout], daemon=True).start()

    def stop(self):
        R.stop_proc(self.p)
        self.err.close()


def sipp_many(run_dir, jobs, realm, scenario, rate_each, count_each, tag):
    """Several bounded SIPp REGISTER runs at once; returns their stats."""
    procs = []
    secs = count_each / rate_each
    for i, (target, csv_path) in enumerate(jobs):
        stf = os.path.join(run_dir, f"{tag}-{i}.csv")
        cmd = ["sipp", f"{target[0]}:{target[1]}", "-i", "127.0.0.1", "-p",
               str(R.free_udp_port()), "-nostdin", "-sf", scenario, "-inf", csv_path,
               "-key", "realm", realm, "-r", str(rate_each), "-rp", "1000",
               "-m", str(count_each), "-l", str(R.SIPP_LIMIT), "-recv_timeout", "5000",
               "-timeout", str(int(secs) + 30), "-timeout_error", "-trace_stat", "-stf", stf,
               "-fd", "1", "-buff_size", "4194304"]
        out = open(os.path.join(run_dir, f"{tag}-{i}.out"), "w")
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), stf, out))
    t0 = time.time()
    for p, _, _ in procs:
        try:
            p.wait(timeout=max(1, secs + 60 - (time.time() - t0)))
        except subprocess.TimeoutExpired:
            R.stop_proc(p)
    results = []
    for p, stf, out in procs:
        out.close()
        st = R.last_stats(stf)
        results.append(st)
    return results, time.time() - t0


def cpu(pids):
    return sum(R.proc_cpu(p) for p in pids)


def summarize(system, rate, count, stats, wall, cpus):
    ok = sum(int(st["SuccessfulCall(C)"]) for st in stats)
    retrans = sum(int(st.get("Retransmissions(C)", 0)) for st in stats)
    elapsed = max(R.stat_elapsed(st) for st in stats)
    achieved = ok / max(0.001, elapsed)
    failed = count - ok
    passed = 100.0 * failed / count < R.FAIL_LIMIT_PCT and achieved >= R.MIN_ACHIEVED * rate
    r = dict(system=system, rate=rate, count=count, successful=ok, failed=failed,
             retrans=retrans, achieved_rate=round(achieved), passed=passed)
    for name, secs in cpus.items():
        r[f"{name}_cpu_pct"] = round(100 * secs / wall, 1)
    return r


def ours_step(src_config, run_dir, users, realm, rate, count, nodes):
    redis = Redis(run_dir)
    ns = []
    try:
        config = cluster_config(src_config, run_dir, redis)
        ns = [Node(config, run_dir, f"n{i}") for i in range(nodes)]
        each = count // nodes
        jobs = []
        users.ensure(count)
        for i, n in enumerate(ns):
            path = os.path.join(run_dir, f"users-{i}.csv")
            with open(path, "w") as f:
                f.write("SEQUENTIAL\n")
                f.writelines(users.lines[i * each:(i + 1) * each])
            jobs.append((n.addr, path))
        c0 = (cpu([n.pid for n in ns]), R.proc_cpu(redis.p.pid))
        stats, wall = sipp_many(run_dir, jobs, realm, R.SCENARIO, rate // nodes, each,
                                f"ours{nodes}-{rate}")
        c1 = (cpu([n.pid for n in ns]), R.proc_cpu(redis.p.pid))
        keys = int(redis.cli("DBSIZE").strip() or 0)
    finally:
        for n in ns:
            n.stop()
        redis.stop()
    r = summarize(f"ours-{nodes}node", rate, each * nodes, stats, wall,
                  {"switch": c1[0] - c0[0], "redis": c1[1] - c0[1]})
    r["redis_keys"] = keys
    return r


class Kamailio:
    def __init__(self, run_dir, redis):
        redis.cli("HSET", "version:entry::location", "table_name", "location",
                  "table_version", "9", "id", "1")
        self.ctl = os.path.join(run_dir, "kam_ctl")
        self.log = open(os.path.join(run_dir, "kamailio.log"), "w")
        self.p = subprocess.Popen(
            ["kamailio", "-f", KAM_CFG, "-DD", "-E", "-m", "1024", "-M", "16",
             "-P", os.path.join(run_dir, "kam.pid"),
             "-A", f'REDIS_URL="{redis.url()}/0"', "-A", f'CTL="unix:{self.ctl}"'],
            stdout=self.log, stderr=subprocess.STDOUT)
        time.sleep(2.0)
        if self.p.poll() is not None:
            raise RuntimeError(f"kamailio did not start; see {self.log.name}")

    def pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True, text=True)
        return [self.p.pid] + [int(x) for x in out.stdout.split()]

    def stop(self):
        R.stop_proc(self.p)
        self.log.close()


def kamailio_step(run_dir, rate, count):
    redis = Redis(run_dir)
    k = None
    try:
        k = Kamailio(run_dir, redis)
        path = os.path.join(run_dir, "kam_users.csv")
        with open(path, "w") as f:
            f.write("SEQUENTIAL\n")
            f.writelines(f"k{i:07d};x;\n" for i in range(count))
        pids = k.pids()
        c0 = (cpu(pids), R.proc_cpu(redis.p.pid))
        stats, wall = sipp_many(run_dir, [(("127.0.0.1", 5070), path)], "127.0.0.1",
                                KAM_SCENARIO, rate, count, f"kam-{rate}")
        c1 = (cpu(pids), R.proc_cpu(redis.p.pid))
        keys = int(redis.cli("DBSIZE").strip() or 0)
    finally:
        if k:
            k.stop()
        redis.stop()
    r = summarize("kamailio-redis", rate, count, stats, wall,
                  {"kamailio": c1[0] - c0[0], "redis": c1[1] - c0[1]})
    r["redis_keys"] = keys
    return r


def memory(src_config, run_dir, users, realm, count, rate):
    """Redis bytes per binding: ours (one node), then Kamailio, `count` distinct users."""
    out = {}
    redis = Redis(run_dir)
    try:
        n = Node(cluster_config(src_config, run_dir, redis), run_dir, "mem")
        try:
            before = redis.used_memory()
            users.ensure(count)
            path = os.path.join(run_dir, "mem-users.csv")
            users.write_csv(path, count)
            stats, _ = sipp_many(run_dir, [(n.addr, path)], realm, R.SCENARIO, rate, count, "mem-ours")
            ok = int(stats[0]["SuccessfulCall(C)"])
            out["ours_bytes_per_binding"] = round((redis.used_memory() - before) / max(1, ok))
            out["ours_registered"] = ok
            sample = redis.cli("GET", redis.cli("RANDOMKEY").strip())
            out["ours_value_bytes_sample"] = len(sample.strip())
        finally:
            n.stop()
    finally:
        redis.stop()
    redis = Redis(run_dir)
    k = None
    try:
        k = Kamailio(run_dir, redis)
        before = redis.used_memory()
        path = os.path.join(run_dir, "kam_users.csv")
        with open(path, "w") as f:
            f.write("SEQUENTIAL\n")
            f.writelines(f"m{i:07d};x;\n" for i in range(count))
        stats, _ = sipp_many(run_dir, [(("127.0.0.1", 5070), path)], "127.0.0.1",
                             KAM_SCENARIO, min(rate, 2000), count, "mem-kam")
        ok = int(stats[0]["SuccessfulCall(C)"])
        out["kamailio_bytes_per_binding"] = round((redis.used_memory() - before) / max(1, ok))
        out["kamailio_registered"] = ok
    finally:
        if k:
            k.stop()
        redis.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="1000,2000,3000,4000,6000,8000,10000,12000")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--config", default=os.path.join(R.REPO, "conf", "switchboard.toml"))
    ap.add_argument("--mem-count", type=int, default=100000)
    ap.add_argument("--mem-rate", type=int, default=5000)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    for tool in ("sipp", "kamailio", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install -y sip-tester kamailio "
                             "kamailio-redis-modules redis-server")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q"], cwd=R.REPO, check=True)
    cfg = tomllib.load(open(a.config, "rb"))
    realm = cfg["server"]["realm"]
    acct = cfg["accounts"][0]
    key = acct["api_keys"][0]
    users = R.Users(R.Minter(acct["sid"], key["sid"], key["secret"]))
    run_dir = tempfile.mkdtemp(prefix="swb-redisbench-")
    results = []
    alive = {"ours-1node": True, "ours-3node": True, "kamailio-redis": True}
    try:
        for rate in [int(x) for x in a.rates.split(",")]:
            count = rate * a.seconds
            steps = [("ours-1node", lambda: ours_step(a.config, run_dir, users, realm, rate, count, 1)),
                     ("ours-3node", lambda: ours_step(a.config, run_dir, users, realm, rate, count, 3)),
                     ("kamailio-redis", lambda: kamailio_step(run_dir, rate, count))]
            for name, step in steps:
                if not alive[name]:
                    continue
                r = step()
                results.append(r)
                R.log(json.dumps(r))
                alive[name] = r["passed"]
            if not any(alive.values()):
                break
        best = {}
        for r in results:
            if r["passed"]:
                best[r["system"]] = max(best.get(r["system"], 0), r["rate"])
        mem = {} if a.skip_memory else memory(a.config, run_dir, users, realm, a.mem_count, a.mem_rate)
        kam = best.get("kamailio-redis", 0)
        summary = dict(best=best, memory=mem,
                       ratio_1node=round(best.get("ours-1node", 0) / kam, 2) if kam else None,
                       ratio_3node=round(best.get("ours-3node", 0) / kam, 2) if kam else None)
        print(json.dumps(summary))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
