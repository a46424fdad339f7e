#!/usr/bin/env python3
"""Calls per second: Switchboard as a B2BUA (carrier INVITE -> signed webhook -> <Dial><Client>)
vs Kamailio 5.6 as a record-routing stateful proxy, and vs Kamailio + rtpengine anchoring
each call's media (rtpengine_peer.py), measured in the same run.

    python3 benches/calls/run.py [--quick]

See README.md beside this file. In short, for our switch, each step runs:
  customer app (examples/customer_app.rs) <- webhook -- switch -- INVITE -> SIPp client_uas (bob)
                                                          ^
                                          SIPp carrier_uac: INVITE/200/ACK, hold, BYE/200
Kamailio's step is ../shared/peers/bench.py calls at the same rate, seconds and hold; the
Kamailio + rtpengine step is rtpengine_peer.py with the same SIPp scenarios.
The rate steps up until a step fails (--past-capacity: every rate runs, and our goodput past
our clean capacity is reported); the highest clean rate of each is compared. Prints one
JSON line at the end. Everything runs on 127.0.0.1; every process started here is stopped by
its PID; each step is bounded in count (rate x seconds) and time. Python standard library only.
"""
import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rtpengine_peer  # noqa: E402  (beside this file)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SIPP_DIR = os.path.join(REPO, "sip-tests", "sipp")
BIN = os.path.join(REPO, "target", "release", "switchboard")
APP_BIN = os.path.join(REPO, "target", "release", "examples", "customer_app")
# The peers' directory is ../shared/peers, beside the repo (--peers overrides it).
PEERS = os.path.normpath(os.path.join(REPO, "..", "shared", "peers"))
CLK = os.sysconf("SC_CLK_TCK")

LADDER = [250, 500, 1000, 2000, 3000, 4000]
QUICK_RATE, QUICK_SECONDS = 100, 5
MIN_ACHIEVED = 0.9          # a step also needs this share of the offered rate achieved
CONTENDED_PCT = 50          # a failing step during which other processes used more than this
                            # (% of one core) is run once more (at most RETRIES a run)
RETRIES = 2
SIPP_LIMIT = 20000          # SIPp -l: calls open at once (bench.py calls' default)
IDENTITY = "bob"            # the registered client the customer app dials
CALLER = "+15557654321"     # From of carrier_uac.xml
VOICE_TWIML = f"<Response><Dial><Client>{IDENTITY}</Client></Dial></Response>"
RTP_PORTS = "10000-32767"   # below Linux's ephemeral range: 11,384 RTP/RTCP pairs (2 per call)
MAX_CONCURRENT = 100000     # [calls] max_concurrent in the config copy, if the key exists


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


# ---------------------------------------------------------------------------------------
# Processes: everything started here is listed and stopped by its PID
# ---------------------------------------------------------------------------------------
STARTED = []


def start(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    STARTED.append(p)
    return p


def stop_proc(p, grace=5):
    """SIGTERM to one process we started, SIGKILL after `grace` s."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in STARTED:
        STARTED.remove(p)


def stop_all():
    for p in reversed(list(STARTED)):
        stop_proc(p)


# ---------------------------------------------------------------------------------------
# /proc measures (as in the peers' bench.py)
# ---------------------------------------------------------------------------------------
def proc_cpu(pid):
    """utime + stime of a process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / CLK
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def machine_busy_s():
    """CPU seconds the whole machine spent busy since boot (all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK


def udp_rcvbuf_errors():
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]))).get("RcvbufErrors", 0)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (the switch binds both)."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def wait_line(path, pattern, proc, timeout, what):
    """Polls a process's output file for a line matching `pattern`; returns the match."""
    deadline = time.time() + timeout
    rx = re.compile(pattern, re.M)
    while time.time() < deadline:
        with open(path, errors="replace") as f:
            m = rx.search(f.read())
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(path, errors="replace") as f:
        raise RuntimeError(f"{what}: no line /{pattern}/ (exit {proc.poll()}): {f.read()[-800:]}")


class Quiet:
    """Concurrent builds on the same 2 cores skew a step. Before each step wait, within a
    budget, until the machine is nearly idle."""

    def __init__(self, per_step_s=15, budget_s=60, threshold_pct=30):
        self.per_step, self.budget, self.threshold = per_step_s, budget_s, threshold_pct

    def wait(self):
        t0 = time.time()
        while True:
            b0 = machine_busy_s()
            time.sleep(1.0)
            busy = 100.0 * (machine_busy_s() - b0)
            waited = time.time() - t0
            if busy < self.threshold or waited >= min(self.per_step, self.budget):
                self.budget = max(0.0, self.budget - waited)
                return round(busy, 1)


# ---------------------------------------------------------------------------------------
# SIPp
# ---------------------------------------------------------------------------------------
def sipp_cmd(target, scenario, port, run_dir, tag, extra):
    """SIPp with the options bench.py uses: stats every second into a CSV, 4 MB buffers."""
    cmd = ["sipp"] + ([target] if target else []) + [
        "-sf", os.path.join(SIPP_DIR, scenario), "-i", "127.0.0.1", "-p", str(port),
        "-nostdin", "-trace_stat", "-stf", os.path.join(run_dir, f"{tag}.csv"), "-fd", "1",
        "-buff_size", "4194304", "-trace_err", "-error_file", os.path.join(run_dir, f"{tag}.err"),
        "-max_log_size", "1000000"]
    return cmd + extra


def last_stats(path):
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except FileNotFoundError:
        return {}
    return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}


def stat_int(st, key):
    try:
        return int(st.get(key, "0") or 0)
    except ValueError:
        return 0


def stat_elapsed(st):
    return float(st["CurrentTime"].split("\t")[-1]) - float(st["StartTime"].split("\t")[-1])


def failure_reasons(st):
    return {k[len("Failed"):-3]: stat_int(st, k) for k in st
            if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)"
            and stat_int(st, k)}


# ---------------------------------------------------------------------------------------
# Config for our switch
# ---------------------------------------------------------------------------------------
def plan(config_path, number=None):
    """(number, application sid, auth token of its account, realm) from the config."""
    cfg = tomllib.load(open(config_path, "rb"))
    nums = cfg.get("numbers", [])
    entry = next((n for n in nums if number is None or n["number"] == number), None)
    if entry is None:
        raise SystemExit(f"{config_path}: no [[numbers]] entry{' for ' + number if number else ''}")
    app = next(a for a in cfg["applications"] if a["sid"] == entry["application"])
    acct = next(a for a in cfg["accounts"] if a["sid"] == app["account"])
    return entry["number"], app["sid"], acct["auth_token"], cfg["server"].get("realm", "switchboard.local")


def write_config(src, dst, sip_port, http_port, app_sid, voice_url):
    """A copy of `src`: SIP and HTTP on the given loopback ports, a wider RTP range, and the
    application `app_sid` fetching `voice_url` instead of inline twiml."""
    text = open(src).read()

    def sub(pattern, repl, s, what):
        s, n = re.subn(pattern, lambda _: repl, s, count=1, flags=re.M)
        if n != 1:
            raise SystemExit(f"{src}: cannot set {what} (no line /{pattern}/)")
        return s

    text = sub(r"^sip_listen\s*=.*$", f'sip_listen = ["127.0.0.1:{sip_port}"]', text, "sip_listen")
    text = sub(r"^http_listen\s*=.*$", f'http_listen = "127.0.0.1:{http_port}"', text, "http_listen")
    text = sub(r"^rtp_ports\s*=.*$", f'rtp_ports = "{RTP_PORTS}"', text, "rtp_ports")
    # The call cap (each leg counts) must not be what limits the rate: at 4,000 calls/s with
    # 1 s hold about 9,000 legs are up at once.
    text = re.sub(r"^max_concurrent\s*=.*$", f"max_concurrent = {MAX_CONCURRENT}", text, flags=re.M)
    # The application's table: from its [[applications]] header to the next table header.
    for m in re.finditer(r"^\[\[applications\]\][^\n]*\n(?:(?!\[).*\n?)*", text, re.M):
        block = m.group(0)
        if not re.search(rf'^sid\s*=\s*"{app_sid}"', block, re.M):
            continue
        if re.search(r"^twiml\s*=\s*(\"\"\"|\'\'\')", block, re.M):
            raise SystemExit(f"{src}: {app_sid}'s twiml is a multi-line string; make it one line")
        block = re.sub(r"^voice_method\s*=.*\n", "", block, flags=re.M)
        new, n = re.subn(r"^(twiml|voice_url)\s*=.*$",
                         lambda _: f'voice_url = "{voice_url}"\nvoice_method = "POST"', block,
                         count=1, flags=re.M)
        if n != 1:
            raise SystemExit(f"{src}: {app_sid} has neither twiml nor voice_url")
        text = text[:m.start()] + new + text[m.end():]
        break
    else:
        raise SystemExit(f"{src}: no [[applications]] table with sid {app_sid}")
    with open(dst, "w") as f:
        f.write(text)
    app = next(a for a in tomllib.load(open(dst, "rb"))["applications"] if a["sid"] == app_sid)
    if app.get("voice_url") != voice_url or "twiml" in app:
        raise SystemExit(f"{dst}: rewriting the application failed: {app}")
    chk = subprocess.run([BIN, "check", "-c", dst], capture_output=True, text=True, timeout=30)
    if chk.returncode != 0:
        raise SystemExit(f"switchboard check -c {dst} failed: {(chk.stderr or chk.stdout).strip()}")


# ---------------------------------------------------------------------------------------
# Our side: customer app + switch + registered client bob (a SIPp UAS)
# ---------------------------------------------------------------------------------------
class Stack:
    def __init__(self, ctx, tag):
        self.ctx, self.tag, d = ctx, tag, ctx["run_dir"]
        self.procs = []
        try:
            self._start(d, tag)
        except BaseException:
            self.stop()
            raise

    def _out(self, name):
        return open(os.path.join(self.ctx["run_dir"], f"{self.tag}-{name}"), "w")

    def _start(self, d, tag):
        c = self.ctx
        # 1. The customer app, answering /voice with <Dial><Client>bob</Client></Dial>.
        script = os.path.join(d, "script.toml")
        with open(script, "w") as f:
            f.write(f'[[route]]\npath = "/voice"\nbody = "{VOICE_TWIML}"\n')
        self.app_log = os.path.join(d, f"{tag}-app.out")
        with open(self.app_log, "w") as out:
            self.app = start([APP_BIN, "--listen", "127.0.0.1:0", "--auth-token", c["auth_token"],
                              "--script", script], stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(self.app)
        app_addr = wait_line(self.app_log, r"^listening http://(\S+)$", self.app, 10,
                             "customer app").group(1)
        # 2. The switch, from a config copy whose application fetches the app's /voice.
        cfg = os.path.join(d, f"{tag}-switchboard.toml")
        write_config(c["config"], cfg, free_port(), free_port(), c["app_sid"],
                     f"http://{app_addr}/voice")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")      # no per-call logging (Kamailio runs debug=1)
        self.sw_out = os.path.join(d, f"{tag}-switch.out")
        self.sw_err = os.path.join(d, f"{tag}-switch.err")
        with open(self.sw_out, "w") as out, open(self.sw_err, "w") as err:
            self.switch = start([BIN, "run", "-c", cfg], cwd=REPO, env=env, stdout=out, stderr=err)
        self.procs.append(self.switch)
        wait_line(self.sw_out, r"^ready$", self.switch, 20, "switchboard")
        self.target = wait_line(self.sw_out, r"^listening sip/udp (\S+)$", self.switch, 1,
                                "switchboard").group(1)
        # 3. Client bob: a SIPp UAS, registered with a bearer token and Contact = its address.
        self.uas_port = free_port()
        with self._out("uas.out") as out:
            self.uas = start(sipp_cmd(None, "client_uas.xml", self.uas_port, d, f"{tag}-uas",
                                      ["-l", str(SIPP_LIMIT * 2)]),
                             stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(self.uas)
        time.sleep(0.3)
        reg = subprocess.run(
            sipp_cmd(self.target, "client_register.xml", free_port(), d, f"{tag}-reg",
                     ["-inf", c["bob_csv"], "-key", "realm", c["realm"], "-key", "contact_host",
                      f"127.0.0.1:{self.uas_port}", "-m", "1", "-timeout", "10", "-timeout_error"]),
            capture_output=True, text=True, timeout=30)
        if reg.returncode != 0:
            raise RuntimeError(f"registering {IDENTITY} failed (sipp rc {reg.returncode}): "
                               f"{(reg.stdout + reg.stderr)[-600:]}")

    def app_requests(self):
        """What the customer app saw: the JSON lines it logged."""
        recs = []
        with open(self.app_log, errors="replace") as f:
            for line in f:
                if line.startswith("{"):
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass
        return recs

    def stop(self):
        for p in reversed(self.procs):
            stop_proc(p)
        self.procs = []


def run_uac(stack, rate, count, hold_ms, tag, trace=False):
    """One bounded SIPp carrier run against the stack's switch; stats and CPU figures."""
    c, d = stack.ctx, stack.ctx["run_dir"]
    seconds = count / rate
    extra = ["-s", c["number"], "-d", str(hold_ms), "-r", str(rate), "-rp", "1000",
             "-m", str(count), "-l", str(SIPP_LIMIT), "-recv_timeout", "10000",
             "-timeout", str(int(seconds) + 40), "-timeout_error"]
    if trace:
        extra += ["-trace_msg", "-message_file", os.path.join(d, f"{tag}-msg.log")]
    cmd = sipp_cmd(stack.target, "carrier_uac.xml", free_port(), d, tag, extra)
    watched = {"switch": stack.switch.pid, "app": stack.app.pid, "uas": stack.uas.pid}
    c0 = {k: proc_cpu(p) for k, p in watched.items()}
    b0, e0, t0 = machine_busy_s(), udp_rcvbuf_errors(), time.time()
    with open(os.path.join(d, f"{tag}.out"), "w") as out:
        p = start(cmd, stdout=out, stderr=subprocess.STDOUT)
    uac_cpu = 0.0
    try:
        while p.poll() is None:
            uac_cpu = max(uac_cpu, proc_cpu(p.pid))
            if time.time() - t0 > seconds + 60:     # beyond SIPp's own -timeout
                log(f"  SIPp over its time bound; stopping PID {p.pid}")
                break
            time.sleep(0.2)
    finally:
        stop_proc(p)
    wall = time.time() - t0
    cpu = {k: proc_cpu(pid) - c0[k] for k, pid in watched.items()}
    busy = machine_busy_s() - b0
    st = last_stats(os.path.join(d, f"{tag}.csv"))
    return dict(st=st, rc=p.returncode, wall=wall, cpu=cpu, uac_cpu=uac_cpu,
                others_cpu_pct=round(max(0.0, 100 * (busy - sum(cpu.values()) - uac_cpu) / wall), 1),
                rcvbuf_errors=udp_rcvbuf_errors() - e0)


def judge(rate, count, ok, failed, achieved):
    return failed == 0 and ok == count and achieved >= MIN_ACHIEVED * rate


def ours_step(ctx, rate, seconds, hold_ms):
    count = rate * seconds
    tag = f"ours-{rate}"
    stack = Stack(ctx, tag)
    try:
        r = run_uac(stack, rate, count, hold_ms, tag)
        # The client legs' BYEs, the UAS's 1 s timewait and its next 1 s stats dump.
        time.sleep(2.5)
        uas = last_stats(os.path.join(ctx["run_dir"], f"{tag}-uas.csv"))
        recs = stack.app_requests()
    finally:
        stack.stop()
    st = r["st"]
    ok, failed = stat_int(st, "SuccessfulCall(C)"), stat_int(st, "FailedCall(C)")
    achieved = ok / max(0.001, stat_elapsed(st) - hold_ms / 1000.0) if st else 0.0
    sw_cpu = r["cpu"]["switch"]
    return dict(system="ours", rate=rate, seconds=seconds, calls=count, successful=ok,
                failed=failed, retrans=stat_int(st, "Retransmissions(C)"),
                achieved_cps=round(achieved, 1), passed=judge(rate, count, ok, failed, achieved),
                invite_to_200_avg=st.get("ResponseTime1(C)"), sipp_rc=r["rc"],
                cpu_s=round(sw_cpu, 2), cpu_pct=round(100 * sw_cpu / r["wall"], 1),
                cpu_s_per_call=round(sw_cpu / ok, 6) if ok else None,
                app_cpu_pct=round(100 * r["cpu"]["app"] / r["wall"], 1),
                uas_cpu_pct=round(100 * r["cpu"]["uas"] / r["wall"], 1),
                uac_cpu_pct=round(100 * r["uac_cpu"] / r["wall"], 1),
                others_cpu_pct=r["others_cpu_pct"], udp_rcvbuf_errors=r["rcvbuf_errors"],
                webhooks=len(recs), bad_signatures=sum(1 for x in recs if not x.get("signature_ok")),
                uas_calls=stat_int(uas, "TotalCallCreated"),
                uas_failed=stat_int(uas, "FailedCall(C)"), uas_open=stat_int(uas, "CurrentCall"),
                fail_reasons=failure_reasons(st), elapsed_s=round(r["wall"], 1))


def kamailio_step(ctx, rate, seconds, hold_ms):
    cmd = [sys.executable, os.path.join(ctx["peers"], "bench.py"), "calls", "--rate", str(rate),
           "--seconds", str(seconds), "--hold-ms", str(hold_ms)]
    b0, t0 = machine_busy_s(), time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    busy, wall = machine_busy_s() - b0, time.time() - t0
    js = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not js:
        raise RuntimeError(f"bench.py calls printed no JSON (rc {p.returncode}): "
                           f"{(p.stderr or p.stdout)[-800:]}")
    j = json.loads(js[-1])
    ok, failed, count = j["successful"], j["failed"], j["calls"]
    cpu_s = j["kamailio_cpu_pct"] / 100.0 * j["elapsed_s"]
    own = (j["kamailio_cpu_pct"] + j["uac_cpu_pct"] + j["uas_cpu_pct"]) / 100.0 * j["elapsed_s"]
    return dict(system="kamailio", rate=rate, seconds=seconds, calls=count, successful=ok,
                failed=failed, retrans=j["retrans"], achieved_cps=j["achieved_cps"],
                passed=judge(rate, count, ok, failed, j["achieved_cps"]),
                invite_to_200_avg=j.get("invite_to_200_avg_ms"), sipp_rc=j["uac_rc"],
                cpu_s=round(cpu_s, 2), cpu_pct=j["kamailio_cpu_pct"],
                cpu_s_per_call=round(cpu_s / ok, 6) if ok else None, uac_cpu_pct=j["uac_cpu_pct"],
                uas_cpu_pct=j["uas_cpu_pct"],
                others_cpu_pct=round(max(0.0, 100 * (busy - own) / wall), 1),
                udp_rcvbuf_errors=j["udp_rcvbuf_errors"], elapsed_s=j["elapsed_s"],
                command=" ".join(cmd[1:]))


def preflight(ctx):
    """One call through our switch, traced: does a call complete at all yet? Returns
    (ok, details)."""
    stack = Stack(ctx, "preflight")
    try:
        r = run_uac(stack, 1, 1, 200, "preflight", trace=True)
        time.sleep(1.5)
        recs = stack.app_requests()
        uas = last_stats(os.path.join(ctx["run_dir"], "preflight-uas.csv"))
    finally:
        stack.stop()
    msgs = ""
    try:
        with open(os.path.join(ctx["run_dir"], "preflight-msg.log"), errors="replace") as f:
            msgs = f.read()
    except FileNotFoundError:
        pass
    got = [int(s) for s in re.findall(r"received.*?:\s*\n\s*SIP/2\.0 (\d{3})", msgs)]
    st = r["st"]
    ok = stat_int(st, "SuccessfulCall(C)") == 1
    first = recs[0] if recs else {}
    params = first.get("params", {})
    want = {"To": ctx["number"], "From": CALLER, "Direction": "inbound", "CallStatus": "ringing"}
    details = dict(call_completed=ok, carrier_got=got, webhooks=len(recs),
                   signature_ok=first.get("signature_ok"),
                   webhook_param_mismatches={k: params.get(k) for k, v in want.items()
                                             if params.get(k) != v} if recs else None,
                   client_invites=stat_int(uas, "TotalCallCreated"),
                   fail_reasons=failure_reasons(st))
    if not ok:
        with open(stack.sw_err, errors="replace") as f:
            details["switch_log_tail"] = [l.rstrip() for l in f.readlines()[-5:]]
    return ok, details


# ---------------------------------------------------------------------------------------
def run_step(name, fn, rate, quiet):
    busy_before = quiet.wait()
    log(f"[{name}] {rate} calls/s x {fn.seconds} s (machine busy {busy_before}% before)")
    try:
        r = fn(rate)
    except Exception as e:                 # a step that cannot run counts as failing
        log(f"  step failed to run: {e}")
        return dict(system=name, rate=rate, passed=False, error=str(e)[:800])
    r["busy_before_pct"] = busy_before
    log("  " + compact({k: r.get(k) for k in ("successful", "failed", "retrans", "achieved_cps",
                                             "cpu_pct", "cpu_s_per_call", "webhooks",
                                             "others_cpu_pct", "passed")}))
    return r


def ramp(ladder, systems, quiet, deadline, step_cost_s, past_capacity=False):
    """systems: [(name, fn)]. At each rate every system still passing runs a step, in turn,
    so background load hits both alike; a system stops after its first failing step, unless
    `past_capacity` (then every rate runs, to see what each delivers when overloaded)."""
    results = {name: [] for name, _ in systems}
    live = {name for name, _ in systems}
    retries = RETRIES
    for rate in ladder:
        for name, fn in systems:
            if name not in live:
                continue
            if time.time() + step_cost_s > deadline:
                log(f"time budget reached: no more steps ({name} at {rate}/s not run)")
                return results, True
            r = run_step(name, fn, rate, quiet)
            if not r["passed"] and r.get("others_cpu_pct", 0) > CONTENDED_PCT and retries > 0:
                retries -= 1
                r["contended_retried"] = True
                results[name].append(r)
                log(f"  others used {r['others_cpu_pct']}% of a core: running the step again")
                r = run_step(name, fn, rate, quiet)
            results[name].append(r)
            if not r["passed"] and not past_capacity:
                live.discard(name)
        if not live:
            break
    return results, False


def best(results):
    """The highest-rate step that passed, below the first that failed (with
    --past-capacity a later step may pass by luck; capacity is where it first broke)."""
    top = None
    for r in results:
        if not r.get("passed"):
            break
        top = r
    return top


def goodput_past_capacity(results):
    """For every step above the clean capacity: completed calls/s as a share of it. Past
    its capacity a switch should shed the excess and keep completing about as many calls
    as it can (the aim: >= 90% at 1.5x and 2x)."""
    top = best(results)
    if not top:
        return []
    cap = top["rate"]
    return [dict(rate=r["rate"], multiple=round(r["rate"] / cap, 2),
                 completed_cps=r.get("achieved_cps"), failed=r.get("failed"),
                 pct_of_capacity=round(100 * r["achieved_cps"] / cap, 1)
                 if r.get("achieved_cps") is not None else None)
            for r in results if r["rate"] > cap]


def fmt_table(results):
    hdr = ("rate/s", "calls", "ok", "failed", "retrans", "achieved/s", "cpu%", "µs/call",
           "webhooks", "others cpu%", "pass")
    rows = [hdr]
    for r in results:
        if "error" in r:
            rows.append((str(r["rate"]),) + ("-",) * 9 + ("error",))
            continue
        rows.append((str(r["rate"]), str(r["calls"]), str(r["successful"]), str(r["failed"]),
                     str(r["retrans"]), f"{r['achieved_cps']:.0f}", f"{r['cpu_pct']:.0f}",
                     "-" if r["cpu_s_per_call"] is None else f"{1e6 * r['cpu_s_per_call']:.0f}",
                     str(r.get("webhooks", "-")),
                     f"{r['others_cpu_pct']:.0f}",
                     "yes" if r["passed"] else ("NO, re-run" if r.get("contended_retried") else "NO")))
    w = [max(len(row[i]) for row in rows) for i in range(len(hdr))]
    return "\n".join("  " + "  ".join(c.rjust(w[i]) for i, c in enumerate(row)) for row in rows)


def ensure_tools(need_kamailio):
    missing = [t for t in ["sipp"] + (["kamailio", "kamcmd"] if need_kamailio else [])
               if not shutil.which(t)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing {missing} (apt-get install -y sip-tester kamailio)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "sip-tester", "kamailio"], env=env,
                       timeout=600, stdout=subprocess.DEVNULL)
        missing = [t for t in missing if not shutil.which(t)]
    if missing:
        raise SystemExit(f"{missing} not found: apt-get install -y sip-tester kamailio")


def main():
    global BIN, APP_BIN
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"one step per system: {QUICK_RATE} calls/s for {QUICK_SECONDS} s")
    ap.add_argument("--rates", help=f"comma-separated ladder (default {LADDER})")
    ap.add_argument("--seconds", type=int, help="seconds per step (default 30; max 60)")
    ap.add_argument("--hold-ms", type=int, default=1000,
                    help="ms between ACK and BYE (default 1000, as bench.py calls)")
    ap.add_argument("--budget", type=int, default=540,
                    help="stop starting steps after this many seconds (default 540)")
    ap.add_argument("--config", default=os.path.join(REPO, "conf", "switchboard.toml"))
    ap.add_argument("--number", help="called number (default: the config's first [[numbers]])")
    ap.add_argument("--peers", default=PEERS,
                    help="the peers' directory (default ../shared/peers beside the repo)")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--skip-kamailio", action="store_true")
    ap.add_argument("--skip-rtpengine", action="store_true",
                    help="do not run the Kamailio + rtpengine peer")
    ap.add_argument("--past-capacity", action="store_true",
                    help="run every rate for every system (no stop at the first failing "
                         "step) and report goodput past capacity")
    ap.add_argument("--force-ours", action="store_true",
                    help="run our steps even when the preflight call fails")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bin", help="switch binary (implies --no-build)")
    ap.add_argument("--app-bin", help="customer app binary (implies --no-build)")
    ap.add_argument("--no-quiet-wait", action="store_true",
                    help="do not wait for an idle machine before each step")
    ap.add_argument("--json-out", help="also write every step's details to this file")
    a = ap.parse_args()

    seconds = a.seconds or (QUICK_SECONDS if a.quick else 30)
    if not 1 <= seconds <= 60:
        raise SystemExit("--seconds must be 1..60")
    ladder = ([int(x) for x in a.rates.split(",")] if a.rates
              else [QUICK_RATE] if a.quick else LADDER)
    t_start = time.time()
    ensure_tools(not a.skip_kamailio)
    BIN = os.path.abspath(a.bin) if a.bin else BIN
    APP_BIN = os.path.abspath(a.app_bin) if a.app_bin else APP_BIN
    if not (a.no_build or a.bin or a.app_bin):
        log("cargo build --release --bin switchboard --example customer_app")
        b = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "switchboard",
                            "--example", "customer_app"], cwd=REPO)
        if b.returncode != 0:
            raise SystemExit("cargo build failed")

    run_dir = tempfile.mkdtemp(prefix="swb-callbench-")
    number, app_sid, auth_token, realm = plan(a.config, a.number)
    report = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), ladder=ladder, seconds=seconds,
                  hold_ms=a.hold_ms, number=number,
                  commit=subprocess.run(["git", "log", "--oneline", "-1"], cwd=REPO,
                                        capture_output=True, text=True).stdout.strip())
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    prev = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in prev:
        signal.signal(s, interrupted)
    try:
        systems = []
        if not a.skip_ours:
            tok = subprocess.run([BIN, "token", "-c", a.config, "--identity", IDENTITY,
                                  "--incoming", "--ttl", "3600"],
                                 capture_output=True, text=True, timeout=30)
            token = tok.stdout.strip().splitlines()[-1] if tok.returncode == 0 and tok.stdout.strip() else None
            if not token:
                raise SystemExit(f"switchboard token failed: {tok.stderr.strip()}")
            bob_csv = os.path.join(run_dir, "bob.csv")
            with open(bob_csv, "w") as f:
                f.write(f"SEQUENTIAL\n{token};{IDENTITY};\n")
            ctx = dict(run_dir=run_dir, config=a.config, number=number, app_sid=app_sid,
                       auth_token=auth_token, realm=realm, bob_csv=bob_csv, peers=a.peers)
            log("[ours] preflight: one call, traced")
            try:
                ok, pf = preflight(ctx)
            except Exception as e:
                ok, pf = False, dict(error=str(e)[:800])
            report["preflight"] = pf
            log("  " + compact(pf))
            if ok or a.force_ours:
                fn = lambda r: ours_step(ctx, r, seconds, a.hold_ms)
                fn.seconds = seconds
                systems.append(("ours", fn))
            else:
                report["ours_skipped"] = "one call through the switch did not complete: see preflight"
                log("[ours] " + report["ours_skipped"])
        if not a.skip_kamailio:
            kctx = dict(peers=a.peers)
            fk = lambda r: kamailio_step(kctx, r, seconds, a.hold_ms)
            fk.seconds = seconds
            systems.append(("kamailio", fk))
        if not a.skip_rtpengine:
            lacking = rtpengine_peer.missing()
            if lacking:
                report["rtpengine_skipped"] = f"missing {lacking} (apt-get install -y kamailio rtpengine-daemon)"
                log("[kamailio+rtpengine] skipped: " + report["rtpengine_skipped"])
            else:
                me = sys.modules[__name__]
                fr = lambda r: rtpengine_peer.step(me, a.peers, r, seconds, a.hold_ms)
                fr.seconds = seconds
                systems.append(("kamailio+rtpengine", fr))
        quiet = Quiet(0 if a.no_quiet_wait else 15, 0 if a.no_quiet_wait else 60)
        res, cut = ramp(ladder, systems, quiet, t_start + a.budget, seconds + 20,
                        a.past_capacity)
        ours, kam = res.get("ours", []), res.get("kamailio", [])
        kr = res.get("kamailio+rtpengine", [])
        top_o, top_k, top_r = best(ours), best(kam), best(kr)
        report.update(ours=ours, kamailio=kam, kamailio_rtpengine=kr, budget_cut=cut)

        print()
        if ours:
            print("Switchboard: carrier INVITE -> signed webhook -> <Dial><Client> -> registered client")
            print(fmt_table(ours))
        if kam:
            print("Kamailio 5.6: record-routing stateful proxy to a registered UAS (peers' bench.py calls)")
            print(fmt_table(kam))
        if kr:
            print("Kamailio 5.6 + rtpengine: the same proxy anchoring each call's media over NG "
                  "(offer/answer/delete); cpu = Kamailio + rtpengine")
            print(fmt_table(kr))
        summary = dict(
            ours_cps=top_o["rate"] if top_o else (0 if ours else None),
            kamailio_cps=top_k["rate"] if top_k else (0 if kam else None),
            ratio=None,
            ours_cpu_s_per_call=top_o["cpu_s_per_call"] if top_o else None,
            kamailio_cpu_s_per_call=top_k["cpu_s_per_call"] if top_k else None,
            ours_achieved_cps=top_o["achieved_cps"] if top_o else None,
            kamailio_achieved_cps=top_k["achieved_cps"] if top_k else None,
            ours_top_step_failed=bool(ours) and not ours[-1].get("passed"),
            kamailio_top_step_failed=bool(kam) and not kam[-1].get("passed"),
            kamailio_rtpengine_cps=top_r["rate"] if top_r else (0 if kr else None),
            ratio_rtpengine=None,
            kamailio_rtpengine_cpu_s_per_call=top_r["cpu_s_per_call"] if top_r else None,
            kamailio_rtpengine_top_step_failed=bool(kr) and not kr[-1].get("passed"),
            ours_goodput_past_capacity=goodput_past_capacity(ours),
            seconds_per_step=seconds, hold_ms=a.hold_ms, budget_cut=cut,
            seconds=round(time.time() - t_start))
        if summary["ours_cps"] is not None and summary["kamailio_cps"]:
            summary["ratio"] = round(summary["ours_cps"] / summary["kamailio_cps"], 2)
        if summary["ours_cps"] is not None and summary["kamailio_rtpengine_cps"]:
            summary["ratio_rtpengine"] = round(
                summary["ours_cps"] / summary["kamailio_rtpengine_cps"], 2)
        if "rtpengine_skipped" in report:
            summary["rtpengine_skipped"] = report["rtpengine_skipped"]
        if "ours_skipped" in report:
            summary["ours_skipped"] = report["ours_skipped"]
            summary["ours_preflight"] = {k: v for k, v in report["preflight"].items()
                                         if k != "switch_log_tail"}
        report["summary"] = summary
        if a.json_out:
            with open(a.json_out, "w") as f:
                json.dump(report, f, indent=1)
        print(compact(summary), flush=True)
    finally:
        stop_all()
        for s, h in prev.items():
            signal.signal(s, h)
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
