#!/usr/bin/env python3
"""REGISTER load, Switchboard (bearer token on every REGISTER) vs Kamailio 5.6 (no auth), one run.

    python3 benches/register/run.py [--quick]

What it does (see README.md beside this file):
  1. `cargo build --release`, then checks the token shape this script mints against
     `switchboard token` (when that subcommand exists) and sends a few single REGISTERs to a
     fresh switch: a minted token must get 200; none, a forged or an expired one 401; a token
     for another identity 403. The ramp runs only when a minted token gets 200.
  2. A rising ladder of rates; at each rate, ours then Kamailio (interleaved, so load from
     other work on the machine hits both alike), each stopping after its first failing step:
     - ours: a fresh `switchboard run` on 127.0.0.1:0 and one SIPp run of
       rate*STEP_SECONDS REGISTERs (scenario reg_bearer.xml), every REGISTER a distinct user
       u000000.. carrying its own Twilio-shaped HS256 access token, so every REGISTER is that
       user's first and its JWT is verified;
     - Kamailio: ../shared/peers/bench.py reg (in-memory registrar, no auth, 2 workers;
       a fresh Kamailio per step), with distinct users too (--csv).
     Before each step the script waits (within a budget) for the machine to be idle, and it
     reports the CPU that other processes used during the step; a failing step during which
     they used over half a core is run once more (at most 3 times a run).
  3. Memory: 100,000 distinct registrations on a fresh switch (config copy with T1 = 50 ms so
     server transactions end 3.2 s later), VmRSS before and after; then 100,000 more (the
     marginal figure); Kamailio's figure from `bench.py regmem --count 100000`.
  4. Prints a table per system and one JSON line:
     {"ours_max_rate":..,"kamailio_max_rate":..,"ratio":..,...}

A step passes when fewer than 0.1% of its REGISTERs failed (failed = count - successful, so a
REGISTER never sent because SIPp timed out counts as failed) and SIPp achieved at least 90% of
the offered rate. Retransmissions are reported beside it, and the highest pass with zero
retransmissions is reported as the "clean" rate.

Bounds: traffic only to 127.0.0.1; each step at most STEP_SECONDS of offered traffic, with
SIPp's own -timeout and a hard subprocess timeout; every process started here is stopped by
its PID. Python standard library only.
"""
import argparse
import base64
import csv
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.path.join(REPO, "target", "release", "switchboard")
# The peers' directory is ../shared/peers, beside the repo (--peers overrides it).
PEERS = os.path.normpath(os.path.join(REPO, "..", "shared", "peers"))
SCENARIO = os.path.join(HERE, "reg_bearer.xml")
CLK = os.sysconf("SC_CLK_TCK")

LADDER = [2000, 4000, 6000, 8000, 10000, 12000, 15000, 20000, 25000, 30000, 35000, 40000,
          45000, 50000]
QUICK_LADDER = [5000, 10000, 15000, 20000, 25000, 30000, 40000]
FAIL_LIMIT_PCT = 0.1      # a step passes below this share of failed REGISTERs
MIN_ACHIEVED = 0.9        # ... and when SIPp achieved this share of the offered rate
CONTENDED_PCT = 50        # a failing step during which others used more CPU than this
                          # (% of one core) is run once more (at most 3 such re-runs a run)
SIPP_LIMIT = 5000
SIPP_SOCKETS = 1          # --sipp-sockets: SIPp source sockets towards the switch         # SIPp -l: REGISTERs outstanding at once (bench.py's default too)
TOKEN_TTL = 7200


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Access tokens (Twilio Access Token shape, HS256 with the API key secret)
# ---------------------------------------------------------------------------------------
def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


class Minter:
    """Mints what twilio-node's AccessToken(ACCOUNT_SID, KEY_SID, SECRET, {identity, ttl}) with
    a VoiceGrant({incomingAllow: true}) produces: the same header, claims and claim order."""
    HEADER = {"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}

    def __init__(self, account_sid, key_sid, secret):
        self.ac, self.sk, self.key = account_sid, key_sid, secret.encode()

    def claims(self, identity, iat, ttl, outgoing=None):
        voice = {"incoming": {"allow": True}}
        if outgoing is not None:
            voice["outgoing"] = outgoing
        return {"jti": f"{self.sk}-{iat}", "grants": {"identity": identity, "voice": voice},
                "iat": iat, "exp": iat + ttl, "iss": self.sk, "sub": self.ac}

    def sign(self, header, claims):
        signing_input = b64url(compact(header).encode()) + "." + b64url(compact(claims).encode())
        sig = hmac.new(self.key, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + b64url(sig)

    def token(self, identity, iat, ttl=TOKEN_TTL, outgoing=None):
        return self.sign(self.HEADER, self.claims(identity, iat, ttl, outgoing))

    def verify(self, token):
        """True when token's signature is HS256 with our key secret."""
        head, body, sig = token.split(".")
        want = hmac.new(self.key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return hmac.compare_digest(want, b64url_decode(sig))


def decode(token):
    head, body, _ = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))


class Users:
    """Distinct users u000000.. with a token each, minted on demand and kept for the run."""

    def __init__(self, minter, prefix="u"):
        self.minter, self.prefix, self.iat, self.lines = minter, prefix, int(time.time()), []

    def ensure(self, n):
        t0 = time.time()
        start = len(self.lines)
        for i in range(start, n):
            ident = f"{self.prefix}{i:06d}"
            self.lines.append(f"{ident};{self.minter.token(ident, self.iat)};\n")
        if n > start:
            log(f"  minted {n - start} tokens ({self.prefix}{start:06d}..) in {time.time() - t0:.1f} s")

    def write_csv(self, path, n):
        self.ensure(n)
        with open(path, "w") as f:
            f.write("SEQUENTIAL\n")
            f.writelines(self.lines[:n])


# ---------------------------------------------------------------------------------------
# /proc helpers (same measures as the peers' bench.py)
# ---------------------------------------------------------------------------------------
def proc_cpu(pid):
    """utime + stime of a process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / CLK
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def thread_cpu(pid):
    """{tid: (thread name, utime + stime in s)} for every thread of pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            parts = raw.rsplit(")", 1)[1].split()
            out[tid] = (name, (int(parts[11]) + int(parts[12])) / CLK)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return out


def busiest_threads(before, after, wall, n=4):
    """The n threads that used most CPU between two thread_cpu() samples, in % of a core."""
    d = [(after[t][1] - before.get(t, ("", 0.0))[1], after[t][0]) for t in after]
    d.sort(reverse=True)
    return [f"{name}:{100 * c / wall:.0f}%" for c, name in d[:n] if c > 0]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def udp_rcvbuf_errors():
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]))).get("RcvbufErrors", 0)


def sock_drops(port):
    """Drop counter of the UDP socket bound to 127.0.0.1:port (the switch's)."""
    tot = 0
    for line in open("/proc/net/udp").readlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port:
            tot += int(f[-1])
    return tot


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop_proc(p, grace=10):
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL after `grace` s."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ---------------------------------------------------------------------------------------
# The switch
# ---------------------------------------------------------------------------------------
class Switch:
    def __init__(self, config, run_dir, tag):
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")   # no per-request logging (Kamailio runs debug=1)
        self.errlog = open(os.path.join(run_dir, f"switch-{tag}.log"), "w")
        self.p = subprocess.Popen([BIN, "run", "-c", config, "--sip", "127.0.0.1:0",
                                   "--http", "127.0.0.1:0"], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=self.errlog, text=True)
        self.pid = self.p.pid
        self.addr = None
        lines = []
        deadline = time.time() + 20
        ready = threading.Event()

        def reader():
            for line in self.p.stdout:        # keeps draining stdout after `ready`
                lines.append(line.rstrip("\n"))
                m = re.match(r"listening sip/udp (\S+)", line)
                if m and self.addr is None:
                    host, port = m.group(1).rsplit(":", 1)
                    self.addr = (host, int(port))
                if line.strip() == "ready":
                    ready.set()
            ready.set()

        threading.Thread(target=reader, daemon=True).start()
        ready.wait(max(0.0, deadline - time.time()))
        if self.p.poll() is not None or self.addr is None or not ready.is_set():
            self.stop()
            raise RuntimeError(f"switch did not start (stdout: {lines}; stderr in {self.errlog.name})")

    def stop(self):
        stop_proc(self.p)
        self.errlog.close()


def register_once(addr, user, realm, token=None, timeout=3.0):
    """Send one REGISTER over UDP from 127.0.0.1 and return the final status code (or None)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        lport = s.getsockname()[1]
        branch = "z9hG4bK" + os.urandom(8).hex()
        lines = [f"REGISTER sip:{realm} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch}",
                 "Max-Forwards: 70",
                 f"From: <sip:{user}@{realm}>;tag={os.urandom(4).hex()}",
                 f"To: <sip:{user}@{realm}>",
                 f"Call-ID: {os.urandom(8).hex()}@127.0.0.1",
                 "CSeq: 1 REGISTER",
                 f"Contact: <sip:{user}@127.0.0.1:{lport}>"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        lines += ["Expires: 3600", "User-Agent: sipp-bench", "Content-Length: 0", "", ""]
        s.sendto("\r\n".join(lines).encode(), addr)
        deadline = time.time() + timeout
        while time.time() < deadline:
            data, _ = s.recvfrom(65535)
            m = re.match(rb"SIP/2\.0 (\d{3})", data)
            if m and int(m.group(1)) >= 200:
                return int(m.group(1))
    except socket.timeout:
        return None
    finally:
        s.close()
    return None


# ---------------------------------------------------------------------------------------
# SIPp
# ---------------------------------------------------------------------------------------
def last_stats(stf):
    with open(stf, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    return dict(zip(rows[0], rows[-1]))


def stat_elapsed(st):
    return float(st["CurrentTime"].split("\t")[-1]) - float(st["StartTime"].split("\t")[-1])


def failure_reasons(st):
    keys = ["FailedCallRejected", "FailedMaxUDPRetrans", "FailedTcpConnect", "FailedTcpClosed",
            "FailedUnexpectedMessage", "FailedCallAborted", "FailedCmdNotSent",
            "FailedRegexpDoesntMatch", "FailedRegexpShouldntMatch", "FailedRegexpHdrNotFound",
            "FailedOutboundCongestion", "FailedTimeoutOnRecv", "FailedTimeoutOnSend"]
    out = {}
    for k in keys:
        v = int(st.get(k + "(C)", "0") or 0)
        if v:
            out[k] = v
    return out


def run_sipp(run_dir, target, csv_path, realm, rate, count, tag, watch_pid=None, scenario=SCENARIO):
    """One bounded SIPp REGISTER run against target (host, port); returns its stats and CPU."""
    stf = os.path.join(run_dir, f"{tag}.csv")
    lport = free_udp_port()
    secs = count / rate
    cmd = ["sipp", f"{target[0]}:{target[1]}", "-i", "127.0.0.1", "-p", str(lport), "-nostdin",
           "-sf", scenario, "-inf", csv_path, "-key", "realm", realm,
           "-r", str(rate), "-rp", "1000", "-m", str(count), "-l", str(SIPP_LIMIT),
           "-recv_timeout", "5000", "-timeout", str(int(secs) + 30), "-timeout_error",
           "-trace_stat", "-stf", stf, "-fd", "1", "-buff_size", "4194304"]
    if SIPP_SOCKETS > 1:
        # Several source ports: the switch's SO_REUSEPORT shards each get a share (the kernel
        # picks a shard socket by the source address and port).
        cmd += ["-t", "un", "-max_socket", str(SIPP_SOCKETS)]
    out = open(os.path.join(run_dir, f"{tag}.out"), "w")
    c0 = proc_cpu(watch_pid) if watch_pid else 0.0
    e0 = udp_rcvbuf_errors()
    b0 = machine_busy_s()
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    sipp_cpu = 0.0
    try:
        while p.poll() is None:
            sipp_cpu = max(sipp_cpu, proc_cpu(p.pid))
            if time.time() - t0 > secs + 60:      # hard bound beyond SIPp's own -timeout
                log(f"  SIPp over its time bound; stopping PID {p.pid}")
                stop_proc(p)
                break
            time.sleep(0.2)
    finally:
        stop_proc(p)
        out.close()
    wall = time.time() - t0
    busy = machine_busy_s() - b0
    server_cpu = (proc_cpu(watch_pid) - c0) if watch_pid else None
    st = last_stats(stf)
    ok = int(st["SuccessfulCall(C)"])
    return dict(st=st, ok=ok, sipp_rc=p.returncode, wall=wall, busy=busy, sipp_cpu=sipp_cpu,
                server_cpu=server_cpu, rcvbuf_errors=udp_rcvbuf_errors() - e0, cmd=cmd)


def step_result(system, rate, count, ok, sipp_failed, retrans, achieved, cpu_s, cpu_pct,
                sipp_cpu_pct, rt_avg, extra=None):
    failed = count - ok
    fail_pct = round(100.0 * failed / max(1, count), 4)
    passed = fail_pct < FAIL_LIMIT_PCT and achieved >= MIN_ACHIEVED * rate
    r = dict(system=system, rate=rate, count=count, successful=ok, failed=failed,
             sipp_failed=sipp_failed, fail_pct=fail_pct, retrans=retrans,
             achieved_rate=round(achieved, 1), cpu_s=round(cpu_s, 2) if cpu_s is not None else None,
             cpu_pct=cpu_pct, sipp_cpu_pct=sipp_cpu_pct, rt_avg=rt_avg, passed=passed)
    if extra:
        r.update(extra)
    return r


def ours_step(config, run_dir, users, realm, rate, count, scenario=SCENARIO, csv_path=None):
    """One step against a fresh switch: `users` write the injection file, unless `csv_path`
    names one already written (digest_overload.py's, for its own scenario)."""
    if csv_path is None:
        csv_path = os.path.join(run_dir, "users.csv")
        users.write_csv(csv_path, count)
    sw = Switch(config, run_dir, f"r{rate}")
    try:
        rss0 = rss_kb(sw.pid)
        th0 = thread_cpu(sw.pid)
        r = run_sipp(run_dir, sw.addr, csv_path, realm, rate, count, f"ours-{rate}", sw.pid,
                     scenario)
        threads = busiest_threads(th0, thread_cpu(sw.pid), r["wall"])
        drops = sock_drops(sw.addr[1])
        rss1 = rss_kb(sw.pid)
    finally:
        sw.stop()
    with open(sw.errlog.name, errors="replace") as f:
        log_tail = [l.rstrip() for l in f.readlines()[-5:]]
    st = r["st"]
    achieved = r["ok"] / max(0.001, stat_elapsed(st))
    return step_result("ours", rate, count, r["ok"], int(st["FailedCall(C)"]),
                       int(st.get("Retransmissions(C)", 0)), achieved, r["server_cpu"],
                       round(100 * r["server_cpu"] / r["wall"], 1),
                       round(100 * r["sipp_cpu"] / r["wall"], 1), st.get("ResponseTime1(C)"),
                       dict(elapsed_s=round(r["wall"], 1), sipp_rc=r["sipp_rc"],
                            window_busy_s=r["busy"], window_wall_s=r["wall"],
                            sipp_cpu_s=round(r["sipp_cpu"], 2),
                            cpu_us_per_register=round(1e6 * r["server_cpu"] / max(1, r["ok"]), 1),
                            busiest_threads=threads,
                            switch_sock_drops=drops, udp_rcvbuf_errors=r["rcvbuf_errors"],
                            rss_mb_before=round(rss0 / 1024, 1), rss_mb_after=round(rss1 / 1024, 1),
                            fail_reasons=failure_reasons(st), switch_log_tail=log_tail))


def kamailio_step(peers, run_dir, rate, count, distinct):
    cmd = [sys.executable, os.path.join(peers, "bench.py"), "reg", "--rate", str(rate),
           "--count", str(count)]
    if distinct:
        path = os.path.join(run_dir, "kam_users.csv")
        if not os.path.exists(path) or kamailio_step.rows < count:
            with open(path, "w") as f:
                f.write("SEQUENTIAL\n")
                for i in range(count):
                    f.write(f"k{i:07d};secret;\n")
            kamailio_step.rows = count
        cmd += ["--csv", path]          # bench.py joins it to its folder: absolute stays absolute
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=count / rate + 120)
    js = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not js:
        raise RuntimeError(f"bench.py reg printed no JSON (rc {p.returncode}): {p.stderr[-800:]}")
    j = json.loads(js[-1])
    cpu_s = j["kamailio_cpu_pct"] / 100.0 * j["elapsed_s"]
    return step_result("kamailio", rate, count, j["successful"], j["failed"], j["retrans"],
                       j["achieved_rate"], cpu_s, j["kamailio_cpu_pct"], j["sipp_cpu_pct"],
                       j.get("rt_avg"),
                       dict(elapsed_s=j["elapsed_s"], sipp_rc=j["sipp_rc"],
                            cpu_us_per_register=round(1e6 * cpu_s / max(1, j["successful"]), 1),
                            udp_rcvbuf_errors=j["udp_rcvbuf_errors"], sock_drops=j.get("sock_drops"),
                            rss_mb_after=j.get("kamailio_rss_mb"), command=" ".join(cmd[1:])))


kamailio_step.rows = 0


class Quiet:
    """Other work on the machine (builds of concurrent sessions) skews a step. Before each
    step wait, within a budget, until the machine is nearly idle; report what it was."""

    def __init__(self, per_step_s, budget_s, threshold_pct, retries=3):
        self.per_step, self.budget, self.threshold = per_step_s, budget_s, threshold_pct
        self.retries = retries         # failing steps run again because of others' load

    def wait(self):
        t0 = time.time()
        while True:
            b0 = machine_busy_s()
            time.sleep(1.0)
            busy = 100.0 * (machine_busy_s() - b0)   # % of one core, like the other CPU figures
            waited = time.time() - t0
            if busy < self.threshold or waited >= min(self.per_step, self.budget):
                self.budget = max(0.0, self.budget - waited)
                return round(busy, 1), round(waited, 1)


def machine_busy_s():
    """CPU seconds spent busy by the whole machine since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / CLK


def run_step(name, step_fn, rate, count, quiet):
    idle_pct, waited = quiet.wait()
    log(f"[{name}] {rate}/s x {count}  (machine busy {idle_pct}% before, waited {waited} s)")
    b0, t0 = machine_busy_s(), time.time()
    try:
        r = step_fn(rate, count)
    except Exception as e:          # a step that cannot run is a failing step
        log(f"  step failed to run: {e}")
        return dict(system=name, rate=rate, count=count, passed=False, error=str(e))
    wall = time.time() - t0
    busy = machine_busy_s() - b0
    if "window_busy_s" in r:           # measured around SIPp alone
        busy, wall = r.pop("window_busy_s"), r.pop("window_wall_s")
        own = (r["cpu_s"] or 0) + r["sipp_cpu_s"]
    else:                              # around bench.py (includes Kamailio's start and stop)
        own = (r["cpu_s"] or 0) + r["sipp_cpu_pct"] / 100.0 * r["elapsed_s"]
    # CPU used by everything but the server under test and SIPp, in % of one core, over the step
    r["others_cpu_pct"] = round(max(0.0, 100.0 * (busy - own) / wall), 1)
    r["busy_before_pct"] = idle_pct
    log("  " + compact({k: r.get(k) for k in ("successful", "fail_pct", "retrans", "achieved_rate",
                                                 "cpu_s", "cpu_pct", "sipp_cpu_pct",
                                                 "others_cpu_pct", "passed")}))
    return r


def ramp(ladder, step_seconds, systems, quiet):
    """systems: [(name, step_fn)]. At each rate each system still passing runs one step, in
    turn, so background load hits both alike. A system stops after its first failing step."""
    results = {name: [] for name, _ in systems}
    live = {name for name, _ in systems}
    for rate in ladder:
        if not live:
            break
        for name, fn in systems:
            if name in live:
                r = run_step(name, fn, rate, rate * step_seconds, quiet)
                if (not r["passed"] and r.get("others_cpu_pct", 0) > CONTENDED_PCT
                        and quiet.retries > 0):
                    # Other work on the machine took a core's worth: run the step once more.
                    quiet.retries -= 1
                    r["contended_retried"] = True
                    results[name].append(r)
                    log(f"  others used {r['others_cpu_pct']}% of a core during the step: retrying it")
                    time.sleep(1)
                    r = run_step(name, fn, rate, rate * step_seconds, quiet)
                results[name].append(r)
                if not r["passed"]:
                    live.discard(name)
                time.sleep(1)
    return results


def best(results):
    results = [r for r in results if not r.get("contended_retried")]
    passed = [r for r in results if r.get("passed")]
    clean = [r for r in passed if r.get("retrans") == 0]
    top = passed[-1] if passed else None
    return (top, clean[-1] if clean else None)


# ---------------------------------------------------------------------------------------
# Memory per binding
# ---------------------------------------------------------------------------------------
def ours_memory(config, run_dir, users, realm, count, rate, settle_s):
    csv_path = os.path.join(run_dir, "mem_users.csv")
    warm = Users(users.minter, prefix="w")
    sw = Switch(config, run_dir, "mem")
    try:
        # Warm-up with other users so lazily built state (thread buffers, maps) is in the
        # baseline, then wait for the warm-up's transactions to end.
        warm.write_csv(csv_path, 2000)
        run_sipp(run_dir, sw.addr, csv_path, realm, 2000, 2000, "mem-warm")
        time.sleep(settle_s)
        users.write_csv(csv_path, count)
        rss0 = rss_kb(sw.pid)
        r = run_sipp(run_dir, sw.addr, csv_path, realm, rate, count, "mem", sw.pid)
        time.sleep(1)
        rss1 = rss_kb(sw.pid)
        time.sleep(settle_s)              # server transactions end (Timer J = 64*T1)
        rss2 = rss_kb(sw.pid)
        # A second `count` of other users: the transaction memory of the first pass is free
        # for reuse by then, so this delta is closer to the bindings alone.
        second = Users(users.minter, prefix="v")
        second.write_csv(csv_path, count)
        r2 = run_sipp(run_dir, sw.addr, csv_path, realm, rate, count, "mem2", sw.pid)
        time.sleep(settle_s)
        rss3 = rss_kb(sw.pid)
    finally:
        sw.stop()
    ok = r["ok"]
    return dict(registered=ok, failed=count - ok, rate=rate, rss_kb_before=rss0,
                rss_kb_right_after=rss1, rss_kb_settled=rss2,
                bytes_per_binding=round((rss2 - rss0) * 1024 / max(1, ok), 1),
                bytes_per_binding_right_after=round((rss1 - rss0) * 1024 / max(1, ok), 1),
                second_registered=r2["ok"], rss_kb_after_second=rss3,
                bytes_per_binding_second=round((rss3 - rss2) * 1024 / max(1, r2["ok"]), 1),
                settle_s=settle_s)


def kamailio_memory(peers, count):
    cmd = [sys.executable, os.path.join(peers, "bench.py"), "regmem", "--count", str(count)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=count / 5000 + 120)
        js = [l for l in p.stdout.splitlines() if l.startswith("{")]
        j = json.loads(js[-1])
        if j.get("registered", 0) < 0.99 * count:
            raise RuntimeError(f"only {j.get('registered')} registered")
        return dict(bytes_per_registration=j["bytes_per_registration"], source="bench.py regmem",
                    registered=j["registered"], command=" ".join(cmd[1:]))
    except Exception as e:
        return dict(bytes_per_registration=1144.0, source=f"peers README (regmem failed: {e})")


# ---------------------------------------------------------------------------------------
# Checks before load
# ---------------------------------------------------------------------------------------
def check_token_cli(config, minter):
    """Compare our minted token with `switchboard token`'s. Returns (ok, note, cli_token)."""
    try:
        p = subprocess.run([BIN, "token", "-c", config, "--identity", "alice", "--incoming",
                            "--ttl", str(TOKEN_TTL)], capture_output=True, text=True, cwd=REPO,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"`switchboard token` did not run ({e})", None
    toks = re.findall(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", p.stdout)
    if p.returncode != 0 or not toks:
        return None, f"`switchboard token` not available ({(p.stderr or p.stdout).strip()[:160]})", None
    cli = toks[-1]
    head, claims = decode(cli)
    ours = minter.claims("alice", claims.get("iat", 0), TOKEN_TTL)
    problems = []
    if not minter.verify(cli):
        problems.append("signature is not HS256 with the configured API key secret")
    if head != Minter.HEADER:
        problems.append(f"header {head} != {Minter.HEADER}")
    extra = {k: v for k, v in claims.items() if k not in ours}
    if extra.keys() - {"nbf"}:
        problems.append(f"CLI has claims we do not mint: {sorted(extra)}")
    for k, v in ours.items():
        if claims.get(k) != v:
            problems.append(f"claim {k}: CLI {claims.get(k)!r}, ours {v!r}")
    if problems:
        return False, "; ".join(problems), cli
    return True, "header, claims and signature match `switchboard token`", cli


def preflight(config, run_dir, minter, realm, cli_token):
    """Single REGISTERs on a fresh switch: which answers does it give?"""
    sw = Switch(config, run_dir, "preflight")
    try:
        iat = int(time.time())
        good = minter.token("pf000001", iat)
        head, body, _ = good.split(".")
        forged = f"{head}.{body}.{b64url(b'0' * 32)}"
        expired = minter.token("pf000003", iat - 2 * TOKEN_TTL)
        res = {"minted token": register_once(sw.addr, "pf000001", realm, good),
               "same token again": register_once(sw.addr, "pf000001", realm, good),
               "no credentials": register_once(sw.addr, "pf000002", realm, None),
               "forged signature": register_once(sw.addr, "pf000001", realm, forged),
               "expired token": register_once(sw.addr, "pf000003", realm, expired),
               "token of another identity": register_once(sw.addr, "pf000004", realm, good)}
        if cli_token:
            res["`switchboard token` token"] = register_once(sw.addr, "alice", realm, cli_token)
        want = {"minted token": 200, "same token again": 200, "no credentials": 401,
                "forged signature": 401, "expired token": 401, "token of another identity": 403,
                "`switchboard token` token": 200}
        res["unexpected"] = {k: f"{v} (want {want[k]})" for k, v in res.items() if v != want[k]}
        res["rss_kb_idle"] = rss_kb(sw.pid)
    finally:
        sw.stop()
    return res


def temp_config(src, run_dir, t1_ms=None):
    """A copy of the config, with server.timers.t1_ms replaced when asked. The per-source
    rate limits are off in every copy (127.0.0.1 is inside the sample trunk's CIDRs too):
    SIPp sends everything from one address, and the bench measures throughput (the flood
    test in sip-tests/flood.rs covers the limits)."""
    text = open(src).read()
    for key in ("requests_per_second_per_source", "trunk_requests_per_second"):
        text, n = re.subn(rf"(?m)^{key}\s*=\s*\d+", f"{key} = 0", text)
        if n != 1:
            return None
    if t1_ms is not None:
        text, n = re.subn(r"(?m)^t1_ms\s*=\s*\d+", f"t1_ms = {t1_ms}", text)
        if n != 1:
            return None
    path = os.path.join(run_dir, f"switchboard{'-t1_' + str(t1_ms) if t1_ms else ''}.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------------------------------
def fmt_table(results):
    hdr = ("rate/s", "count", "ok", "fail%", "retrans", "achieved/s", "cpu s", "cpu%",
           "us/REG", "sipp cpu%", "others cpu%", "pass")
    rows = [hdr]
    for r in results:
        if "error" in r:
            rows.append((str(r["rate"]), str(r["count"]), "-", "-", "-", "-", "-", "-", "-",
                         "-", "-", "error"))
            continue
        rows.append((str(r["rate"]), str(r["count"]), str(r["successful"]), f"{r['fail_pct']:.3f}",
                     str(r["retrans"]), f"{r['achieved_rate']:.0f}", f"{r['cpu_s']:.1f}",
                     f"{r['cpu_pct']:.0f}", f"{r['cpu_us_per_register']:.0f}",
                     f"{r['sipp_cpu_pct']:.0f}", f"{r['others_cpu_pct']:.0f}",
                     "yes" if r["passed"] else ("NO, re-run" if r.get("contended_retried") else "NO")))
    w = [max(len(row[i]) for row in rows) for i in range(len(hdr))]
    return "\n".join("  " + "  ".join(c.rjust(w[i]) for i, c in enumerate(row)) for row in rows)


def main():
    global BIN, SIPP_SOCKETS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"coarse ladder {QUICK_LADDER}, 3 s steps")
    ap.add_argument("--rates", help="comma-separated ladder (default: %s)" % LADDER)
    ap.add_argument("--step-seconds", type=int, help="count = rate * this (default 10; 3 with --quick)")
    ap.add_argument("--config", default=os.path.join(REPO, "conf", "switchboard.toml"))
    ap.add_argument("--peers", default=PEERS,
                    help="the peers' directory (default ../shared/peers beside the repo)")
    ap.add_argument("--mem-count", type=int, default=100000)
    ap.add_argument("--mem-rate", type=int, help="default: half our highest passing rate, 2,000..10,000")
    ap.add_argument("--kamailio-peers-users", action="store_true",
                    help="drive Kamailio with the peers' users.csv (10,000 users, repeated) "
                         "instead of distinct users")
    ap.add_argument("--quiet-wait", type=float, default=15,
                    help="before a step, wait up to this many s for the machine to be idle")
    ap.add_argument("--quiet-budget", type=float, default=90, help="total such waiting, s")
    ap.add_argument("--quiet-threshold", type=float, default=30,
                    help="idle enough: machine busy below this %% of one core")
    ap.add_argument("--sipp-sockets", type=int, default=1,
                    help="towards our switch, SIPp sends from this many sockets (-t un "
                         "-max_socket N) instead of one; Kamailio's runs keep bench.py's one")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--skip-kamailio", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bin", help="switch binary to run (default target/release/switchboard; "
                                  "implies --no-build)")
    ap.add_argument("--json-out", help="also write all results to this file")
    a = ap.parse_args()

    ladder = [int(x) for x in a.rates.split(",")] if a.rates else (QUICK_LADDER if a.quick else LADDER)
    step_s = a.step_seconds or (3 if a.quick else 10)
    if step_s > 20:
        raise SystemExit("--step-seconds is capped at 20")
    for tool in ("sipp",) + (() if a.skip_kamailio else ("kamailio", "kamcmd")):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install -y sip-tester kamailio")

    SIPP_SOCKETS = a.sipp_sockets
    t_start = time.time()
    if a.bin:
        BIN = os.path.abspath(a.bin)
    elif not a.no_build:
        log("cargo build --release")
        b = subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO)
        if b.returncode != 0:
            raise SystemExit("cargo build --release failed")

    cfg = tomllib.load(open(a.config, "rb"))
    realm = cfg["server"].get("realm", "switchboard.local")
    acct = cfg["accounts"][0]
    key = acct["api_keys"][0]
    minter = Minter(acct["sid"], key["sid"], key["secret"])
    run_dir = tempfile.mkdtemp(prefix="swb-regbench-")
    report = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), realm=realm, ladder=ladder,
                  step_seconds=step_s, fail_limit_pct=FAIL_LIMIT_PCT, run_dir=run_dir,
                  sipp_sockets_to_ours=SIPP_SOCKETS,
                  commit=subprocess.run(["git", "log", "--oneline", "-1"], cwd=REPO,
                                        capture_output=True, text=True).stdout.strip(),
                  uncommitted_src_changes=bool(subprocess.run(
                      ["git", "status", "--porcelain", "src", "Cargo.toml"], cwd=REPO,
                      capture_output=True, text=True).stdout.strip()))
    try:
        config = temp_config(a.config, run_dir)
        # Our minting reproduces a fixture made by the twilio npm package, byte for byte.
        fixture = os.path.join(REPO, "src", "registrar", "testdata", "twilio", "twilio-node-access-token.jwt")
        if os.path.exists(fixture):
            fx = open(fixture).read().strip()
            h, c = decode(fx)
            mine = minter.sign(h, minter.claims("alice", c["iat"], c["exp"] - c["iat"],
                                                c["grants"]["voice"].get("outgoing")))
            report["fixture_check"] = "identical to twilio-node fixture" if mine == fx else "DIFFERS from twilio-node fixture"
            log(f"token shape vs {os.path.relpath(fixture, REPO)}: {report['fixture_check']}")
        ok, note, cli_token = (check_token_cli(config, minter) if os.path.exists(BIN)
                               else (None, f"{BIN} not built", None))
        report["token_cli_check"] = note
        log(f"token vs `switchboard token`: {note}")

        ours, kam, mem_ours, mem_kam = [], [], None, None
        systems = []
        if not a.skip_ours:
            try:
                pf = preflight(config, run_dir, minter, realm, cli_token)
            except RuntimeError as e:
                pf = {"minted token": f"no answer: {e}"}
            report["preflight"] = pf
            log(f"single REGISTERs: {pf}")
            if pf["minted token"] != 200:
                report["ours_skipped"] = (f"a REGISTER with a minted token got {pf['minted token']}, "
                                          "not 200: the switch does not register yet")
                log(report["ours_skipped"])
            else:
                users = Users(minter)
                systems.append(("ours", lambda r, n: ours_step(config, run_dir, users, realm, r, n)))
        if not a.skip_kamailio:
            systems.append(("kamailio", lambda r, n: kamailio_step(a.peers, run_dir, r, n,
                                                                   not a.kamailio_peers_users)))
        quiet = Quiet(a.quiet_wait, a.quiet_budget, a.quiet_threshold)
        res = ramp(ladder, step_s, systems, quiet)
        ours, kam = res.get("ours", []), res.get("kamailio", [])
        top_o, clean_o = best(ours)
        top_k, clean_k = best(kam)
        if not a.skip_memory:
            if ours:
                mem_rate = a.mem_rate or max(2000, min(10000, (top_o["rate"] if top_o else 4000) // 2))
                t1 = 50                      # Timer J = 64*T1 = 3.2 s: transactions end soon
                mcfg = temp_config(a.config, run_dir, t1_ms=t1) or config
                log(f"[memory] ours: {a.mem_count} distinct registrations at {mem_rate}/s"
                    f"{' (T1 = 50 ms config copy)' if mcfg != config else ''}")
                mem_ours = ours_memory(mcfg, run_dir, Users(minter), realm, a.mem_count, mem_rate,
                                       settle_s=(64 * t1 / 1000 + 2) if mcfg != config else 34)
                log("  " + compact(mem_ours))
            if not a.skip_kamailio:
                log(f"[memory] kamailio: bench.py regmem --count {a.mem_count}")
                mem_kam = kamailio_memory(a.peers, a.mem_count)
                log("  " + compact(mem_kam))

        report.update(ours=ours, kamailio=kam, memory_ours=mem_ours, memory_kamailio=mem_kam)
        print()
        if ours:
            print("Switchboard: REGISTER, distinct users, Bearer JWT (HS256) verified on each")
            print(fmt_table(ours))
        elif "ours_skipped" in report:
            print("Switchboard: not measured: " + report["ours_skipped"])
        if kam:
            print("Kamailio 5.6: REGISTER, no auth, usrloc in memory, 2 workers (peers' bench.py)"
                  + ("" if a.kamailio_peers_users else ", distinct users"))
            print(fmt_table(kam))
        if mem_ours:
            print(f"Memory per binding, ours: {mem_ours['bytes_per_binding']:.0f} B "
                  f"(VmRSS delta over {mem_ours['registered']} registrations, after transactions ended; "
                  f"{mem_ours['bytes_per_binding_right_after']:.0f} B right after the last one; "
                  f"{mem_ours['bytes_per_binding_second']:.0f} B each for {mem_ours['second_registered']} more)")
        if mem_kam:
            print(f"Memory per registration, Kamailio: {mem_kam['bytes_per_registration']:.0f} B "
                  f"({mem_kam['source']}; shm real_used delta)")
        summary = dict(
            ours_max_rate=top_o["rate"] if top_o else None,
            kamailio_max_rate=top_k["rate"] if top_k else None,
            ratio=round(top_o["rate"] / top_k["rate"], 2) if top_o and top_k else None,
            ours_max_achieved=top_o["achieved_rate"] if top_o else None,
            kamailio_max_achieved=top_k["achieved_rate"] if top_k else None,
            ours_retrans_at_max=top_o["retrans"] if top_o else None,
            kamailio_retrans_at_max=top_k["retrans"] if top_k else None,
            ours_clean_rate=clean_o["rate"] if clean_o else None,
            kamailio_clean_rate=clean_k["rate"] if clean_k else None,
            ours_bytes_per_binding=mem_ours["bytes_per_binding"] if mem_ours else None,
            ours_bytes_per_binding_second_100k=mem_ours["bytes_per_binding_second"] if mem_ours else None,
            kamailio_bytes_per_registration=mem_kam["bytes_per_registration"] if mem_kam else None,
            ours_top_step_failed=bool(ours) and ours[-1].get("passed", False) is False,
            kamailio_top_step_failed=bool(kam) and kam[-1].get("passed", False) is False,
            seconds=round(time.time() - t_start))
        if ours and kam and summary["ratio"] is not None:
            summary["aim"] = 1.5
        report["summary"] = summary
        if a.json_out:
            with open(a.json_out, "w") as f:
                json.dump(report, f, indent=1)
        print(compact(summary), flush=True)
        if ours and not summary["ours_top_step_failed"]:
            log("note: our top step passed: the ladder ended before the switch failed")
        if kam and not summary["kamailio_top_step_failed"]:
            log("note: Kamailio's top step passed: the ladder ended before it failed")
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
