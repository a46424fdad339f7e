#!/usr/bin/env python3
"""RTP relay capacity: Switchboard's media relay vs rtpengine (userspace), measured in the same run.

    python3 benches/media/run.py [--quick] [--streams 1000,2000,...] [--seconds 20]

See README.md beside this file. In short, each step of S streams (S/2 calls, 2 G.711 streams per
call, 50 packets/s each) runs, in this order:
  direct     rtpload talks to itself (no relay): the baseline latency subtracted below;
  ours       a fresh switch; S/2 calls set up over SIP from this script (a carrier socket INVITEs
             a number whose inline TwiML dials the registered client `bench`, the client socket
             answers); PA = port in the switch's 200 to the carrier, PB = port in the switch's
             INVITE to the client; then `rtpload gen`, then BYE for every call;
  rtpengine  a fresh rtpengine (userspace, no kernel module), S/2 calls set up over its NG
             protocol (offer/answer); then `rtpload gen`, then delete.
A step is clean when loss <= 0.1 % (and the generator sent >= 99 % of its offered packets and
every call was set up and relayed). Prints one JSON line per step and a final JSON summary with
the highest clean stream count of each system and the ratio ours / rtpengine.
Everything runs on 127.0.0.1; every process started here is stopped by its PID; each step is
bounded in count (S/2 calls) and time. Python standard library only.
"""
import argparse
import collections
import heapq
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.path.join(REPO, "target", "release", "switchboard")
# The peers' directory is ../shared/peers, beside the repo (--peers overrides it).
PEERS = os.path.normpath(os.path.join(REPO, "..", "shared", "peers"))
CLK = os.sysconf("SC_CLK_TCK")

LADDER = [1000, 2000, 3000, 4000, 5000]
QUICK_STREAMS, QUICK_SECONDS = 200, 5
CLEAN_LOSS_PCT = 0.1          # a step is clean when loss <= this
MIN_SENT_SHARE = 0.99         # ... and the generator sent at least this share of its offer
OUR_P99_TARGET_US = 1000      # DESIGN.md: p99 added latency under 1 ms (reported, not judged)
A_PORT, B_PORT = 20000, 20002  # rtpload's fixed sides
RTP_LOW = 20100               # our rtp_ports start (clear of 20000/20002)
NUMBER = "+15550100001"
IDENTITY = "bench"
REALM = "switchboard.local"
ACCOUNT = "AC" + "0" * 31 + "1"
APP_SID = "AP" + "0" * 31 + "1"
KEY_SID = "SK" + "0" * 31 + "1"
TWIML = f'<Response><Dial timeout="20"><Client>{IDENTITY}</Client></Dial></Response>'
T1, T2 = 0.5, 4.0


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
# /proc measures
# ---------------------------------------------------------------------------------------
def proc_cpu(pid):
    """utime + stime summed over /proc/PID/task/*/stat, in seconds."""
    tot = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0.0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                p = f.read().rsplit(")", 1)[1].split()
            tot += (int(p[11]) + int(p[12])) / CLK
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return tot


def rss_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        pass
    return None


def machine_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK


def udp_rcvbuf_errors():
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]))).get("RcvbufErrors", 0)


def self_cpu():
    t = os.times()
    return t.user + t.system


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def wait_line(path, pattern, proc, timeout, what):
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
    """Before each step wait, within a budget, until the machine is nearly idle."""

    def __init__(self, per_step_s=10, budget_s=60, threshold_pct=30):
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
# The generator
# ---------------------------------------------------------------------------------------
def build_rtpload(peers, run_dir):
    src = os.path.join(peers, "rtpload.c")
    out = os.path.join(run_dir, "rtpload")
    r = subprocess.run(["gcc", "-O2", "-o", out, src], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"gcc -O2 {src} failed: {r.stderr[-800:]}")
    return out


def gen_ports_free():
    for port in (A_PORT, B_PORT):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def run_gen(ctx, pairs, seconds, tag, relay_pid=None, pump=None):
    """rtpload gen over `pairs` [(PA, PB)]; while it runs, `pump(timeout)` services SIP.
    Returns rtpload's JSON plus the relay's CPU % of one core and the others' CPU."""
    mapfile = os.path.join(ctx["run_dir"], f"{tag}.map")
    with open(mapfile, "w") as f:
        f.writelines(f"{a} {b}\n" for a, b in pairs)
    errf = os.path.join(ctx["run_dir"], f"{tag}.gen.err")
    c_relay = proc_cpu(relay_pid) if relay_pid else 0.0
    c_kids, c_self, b0, e0, t0 = children_cpu(), self_cpu(), machine_busy_s(), udp_rcvbuf_errors(), time.time()
    with open(errf, "w") as err:
        p = start([ctx["rtpload"], "gen", mapfile, str(seconds)], stdout=subprocess.PIPE,
                  stderr=err, text=True)
    try:
        while p.poll() is None:
            if time.time() - t0 > seconds + 30:
                log(f"  rtpload over its time bound; stopping PID {p.pid}")
                break
            if pump:
                pump(0.2)
            else:
                time.sleep(0.2)
        relay_cpu = (proc_cpu(relay_pid) - c_relay) if relay_pid else 0.0
        out = p.stdout.read() if p.poll() is not None else ""
    finally:
        stop_proc(p)
    wall = time.time() - t0
    gen_cpu = children_cpu() - c_kids
    busy = machine_busy_s() - b0
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        with open(errf, errors="replace") as f:
            raise RuntimeError(f"rtpload printed no JSON (rc {p.returncode}): {f.read()[-400:]}")
    g = json.loads(lines[-1])
    g["relay_cpu_pct"] = round(100 * relay_cpu / wall, 1)
    g["gen_cpu_pct"] = round(100 * gen_cpu / wall, 1)
    g["others_cpu_pct"] = round(max(0.0, 100 * (busy - relay_cpu - gen_cpu - (self_cpu() - c_self)) / wall), 1)
    g["udp_rcvbuf_errors"] = udp_rcvbuf_errors() - e0
    g["gen_wall_s"] = round(wall, 1)
    return g


GEN_KEYS = ("offered_pps", "sent", "send_err", "received", "loss_pct", "lat_us_p50", "lat_us_p99",
            "lat_us_p999", "lat_us_max", "relay_cpu_pct", "gen_cpu_pct", "others_cpu_pct",
            "udp_rcvbuf_errors")


def judge(res, g, direct, seconds, calls_wanted, calls_relayed):
    """Fills the measurement fields and `clean` of a system's step result."""
    res.update({k: g.get(k) for k in GEN_KEYS})
    offered = g["offered_pps"] * seconds
    res["sent_share"] = round(g["sent"] / offered, 4) if offered else 0.0
    if direct:
        for q in ("p50", "p99", "p999"):
            res[f"added_us_{q}"] = max(0, int(g[f"lat_us_{q}"]) - int(direct[f"lat_us_{q}"]))
    reasons = []
    if calls_relayed < calls_wanted:
        reasons.append(f"only {calls_relayed} of {calls_wanted} calls relayed")
    if g["loss_pct"] > CLEAN_LOSS_PCT:
        reasons.append(f"loss {g['loss_pct']}% > {CLEAN_LOSS_PCT}%")
    if res["sent_share"] < MIN_SENT_SHARE:
        reasons.append(f"generator sent {res['sent_share']:.1%} of its offer")
    res["clean"] = not reasons
    if reasons:
        res["not_clean"] = reasons


def direct_step(ctx, calls, seconds):
    g = run_gen(ctx, [(B_PORT, A_PORT)] * calls, seconds, f"direct-{calls}")
    return {k: g.get(k) for k in ("loss_pct", "lat_us_p50", "lat_us_p99", "lat_us_p999",
                                  "lat_us_max", "gen_cpu_pct", "others_cpu_pct")}


# ---------------------------------------------------------------------------------------
# SIP over raw UDP sockets: a carrier and a registered client
# ---------------------------------------------------------------------------------------
COMPACT = {"i": "call-id", "v": "via", "f": "from", "t": "to", "m": "contact",
           "l": "content-length", "c": "content-type"}


class Msg:
    __slots__ = ("start", "method", "status", "hdrs", "body")

    def __init__(self, data):
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start = lines[0]
        self.hdrs = []
        for l in lines[1:]:
            if l[:1] in (" ", "\t") and self.hdrs:
                n, v = self.hdrs[-1]
                self.hdrs[-1] = (n, v + " " + l.strip())
                continue
            name, _, val = l.partition(":")
            n = name.strip().lower()
            self.hdrs.append((COMPACT.get(n, n), val.strip()))
        cl = self.h("content-length")
        self.body = body[:int(cl)] if cl and cl.isdigit() else body
        if self.start.startswith("SIP/2.0 "):
            self.method, self.status = None, int(self.start.split()[1])
        else:
            self.method, self.status = self.start.split(" ", 1)[0], None

    def h(self, name):
        for n, v in self.hdrs:
            if n == name:
                return v
        return None

    def hall(self, name):
        return [v for n, v in self.hdrs if n == name]

    @property
    def call_id(self):
        return self.h("call-id") or ""

    @property
    def cseq(self):
        num, _, meth = (self.h("cseq") or "0 ?").partition(" ")
        return int(num) if num.isdigit() else 0, meth.strip()


def sdp_media(body):
    """(audio port, connection address) of an SDP body, or (None, None)."""
    t = body.decode("utf-8", "replace")
    m = re.search(r"^m=audio (\d+)", t, re.M)
    c = re.findall(r"^c=IN IP4 (\S+)", t, re.M)
    return (int(m.group(1)) if m else None), (c[-1] if c else None)


def uri_of(header):
    """The URI inside a name-addr (<...>) or the bare addr-spec."""
    m = re.search(r"<([^>]*)>", header)
    return m.group(1) if m else header.split(";", 1)[0].strip()


def tag_of(header):
    m = re.search(r";\s*tag=([^;>\s]+)", header or "")
    return m.group(1) if m else None


def carrier_sdp(i):
    return ("v=0\r\n"
            f"o=carrier {i + 1} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {A_PORT} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n")


def client_sdp(i):
    return ("v=0\r\n"
            f"o=bench {i + 1} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {B_PORT} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


class Call:
    __slots__ = ("i", "cid", "caller", "ftag", "invite", "branch", "t_sent", "t_final", "state",
                 "code", "pa", "pa_addr", "ok", "ack", "leg", "bye", "bye_state", "inv_tx", "bye_tx")

    def __init__(self, i, cid, caller):
        self.i, self.cid, self.caller, self.ftag = i, cid, caller, f"cf{i}x{random.randrange(1 << 30)}"
        self.state, self.code, self.pa, self.pa_addr, self.ok, self.ack, self.leg = "new", None, None, None, None, None, None
        self.bye = self.bye_state = None
        self.inv_tx = self.bye_tx = 0


class Leg:
    __slots__ = ("cid", "invite", "to_tag", "resp", "acked", "pb", "pb_addr", "call", "bye_got", "tx")

    def __init__(self, cid, invite, to_tag):
        self.cid, self.invite, self.to_tag = cid, invite, to_tag
        self.resp, self.acked, self.pb, self.pb_addr, self.call, self.bye_got, self.tx = None, False, None, None, None, False, 0


class SipBench:
    """A carrier socket placing calls to NUMBER and a client socket registered as `bench`
    answering them, driven from one select loop with RFC 3261 retransmissions (T1 0.5 s)."""

    def __init__(self, switch_addr, token, carrier_sdp_fn=None, client_sdp_fn=None, number_fn=None):
        self.sw = switch_addr
        self.token = token
        # The number each call dials (benches/conference/run.py: one per room).
        self.number = number_fn or (lambda i: NUMBER)
        # SDP bodies by call index (benches/srtp/run.py passes its own: SAVPF offers, per-call ports).
        self.carrier_sdp = carrier_sdp_fn or carrier_sdp
        self.client_sdp = client_sdp_fn or client_sdp
        self.csock = self._sock()
        self.usock = self._sock()
        self.cport = self.csock.getsockname()[1]
        self.uport = self.usock.getsockname()[1]
        self.calls, self.by_cid, self.legs, self.by_caller = [], {}, {}, {}
        self.timers, self.seq = [], 0
        self.stats = collections.Counter()
        self.run_id = f"{os.getpid()}x{random.randrange(1 << 30)}"
        self.reg = None

    @staticmethod
    def _sock():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        return s

    def close(self):
        self.csock.close()
        self.usock.close()

    def _send(self, sock, data, addr=None):
        if isinstance(data, str):
            data = data.encode()
        try:
            sock.sendto(data, addr or self.sw)
        except (BlockingIOError, OSError):
            self.stats["send_errors"] += 1

    def _timer(self, delay, kind, obj, interval):
        self.seq += 1
        heapq.heappush(self.timers, (time.time() + delay, self.seq, kind, obj, interval))

    def _branch(self):
        self.seq += 1
        return f"z9hG4bK-{self.run_id}-{self.seq}"

    # -- REGISTER ---------------------------------------------------------------------------
    def register(self, timeout=10):
        cid = f"reg-{self.run_id}@127.0.0.1"
        req = (f"REGISTER sip:{REALM} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.uport};branch={self._branch()};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:{IDENTITY}@{REALM}>;tag=r{self.run_id}\r\n"
               f"To: <sip:{IDENTITY}@{REALM}>\r\nCall-ID: {cid}\r\nCSeq: 1 REGISTER\r\n"
               f"Contact: <sip:{IDENTITY}@127.0.0.1:{self.uport}>\r\n"
               f"Authorization: Bearer {self.token}\r\nExpires: 3600\r\n"
               "User-Agent: swb-media-bench\r\nContent-Length: 0\r\n\r\n")
        deadline, nxt, interval = time.time() + timeout, 0.0, T1
        self.reg = None
        while time.time() < deadline:
            if time.time() >= nxt:
                self._send(self.usock, req)
                nxt, interval = time.time() + interval, min(2 * interval, T2)
            self.pump(0.05)
            if self.reg is not None and self.reg >= 200:
                break
        if self.reg != 200:
            raise RuntimeError(f"REGISTER as {IDENTITY}: final {self.reg}")

    # -- the carrier's side -----------------------------------------------------------------
    def _invite(self, c):
        sdp = self.carrier_sdp(c.i)
        c.branch = self._branch()
        number = self.number(c.i)
        return (f"INVITE sip:{number}@{self.sw[0]}:{self.sw[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.cport};branch={c.branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{c.caller}@127.0.0.1:{self.cport}>;tag={c.ftag}\r\n"
                f"To: <sip:{number}@{self.sw[0]}:{self.sw[1]}>\r\nCall-ID: {c.cid}\r\nCSeq: 1 INVITE\r\n"
                f"Contact: <sip:{c.caller}@127.0.0.1:{self.cport}>\r\nUser-Agent: swb-media-bench\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()

    def _in_dialog(self, c, method, cseq, branch=None):
        """ACK (for a 2xx) or BYE: Request-URI = the 2xx's Contact, To with its tag, Route from
        its Record-Route (reversed; a B2BUA sends none)."""
        ok = c.ok
        routes = "".join(f"Route: {r}\r\n" for r in reversed(ok.hall("record-route")))
        return (f"{method} {uri_of(ok.h('contact') or '<sip:' + NUMBER + '@' + self.sw[0] + '>')} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.cport};branch={branch or self._branch()};rport\r\n"
                f"{routes}Max-Forwards: 70\r\nFrom: <sip:{c.caller}@127.0.0.1:{self.cport}>;tag={c.ftag}\r\n"
                f"To: {ok.h('to')}\r\nCall-ID: {c.cid}\r\nCSeq: {cseq} {method}\r\n"
                "User-Agent: swb-media-bench\r\nContent-Length: 0\r\n\r\n").encode()

    def _ack_non2xx(self, c, resp):
        return (f"ACK sip:{self.number(c.i)}@{self.sw[0]}:{self.sw[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.cport};branch={c.branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{c.caller}@127.0.0.1:{self.cport}>;tag={c.ftag}\r\n"
                f"To: {resp.h('to')}\r\nCall-ID: {c.cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode()

    def _on_carrier(self, m, addr):
        c = self.by_cid.get(m.call_id)
        if m.status is None:                        # a request from the switch to the carrier
            self._answer_request(self.csock, m, addr, c.ftag if c else "x", self.cport,
                                 self.carrier_sdp(c.i) if c else None, c, "carrier")
            return
        if c is None:
            self.stats["carrier_stray_responses"] += 1
            return
        _, meth = m.cseq
        if meth == "INVITE":
            if m.status < 200:
                if c.state == "sent":
                    c.state = "proceeding"
                self.stats[f"carrier_got_{m.status}"] += 1
            elif m.status < 300:
                if c.ok is None:
                    c.ok, c.state, c.code, c.t_final = m, "answered", m.status, time.time()
                    c.pa, c.pa_addr = sdp_media(m.body)
                    c.ack = self._in_dialog(c, "ACK", 1)
                    self.stats["carrier_got_200"] += 1
                else:
                    self.stats["carrier_200_retrans"] += 1
                self._send(self.csock, c.ack)
            else:
                if c.state not in ("answered", "failed"):
                    c.state, c.code, c.t_final = "failed", m.status, time.time()
                    self.stats[f"carrier_got_{m.status}"] += 1
                self._send(self.csock, self._ack_non2xx(c, m))
        elif meth == "BYE":
            if m.status >= 200 and c.bye_state == "sent":
                c.bye_state = "ok" if m.status < 300 else f"failed {m.status}"
        else:
            self.stats[f"carrier_response_to_{meth}"] += 1

    # -- the client's side ------------------------------------------------------------------
    def _answer_request(self, sock, m, addr, to_tag, port, sdp, owner, side):
        """Answers a request the switch sent (not a new INVITE to the client): 200 to BYE,
        re-INVITE (with our SDP), OPTIONS, INFO, UPDATE, NOTIFY, CANCEL; nothing to ACK."""
        meth = m.method
        self.stats[f"{side}_got_{meth}"] += 1
        if meth == "ACK":
            return
        if side == "client" and meth == "BYE" and owner is not None:
            owner.bye_got = True
        if side == "carrier" and meth == "BYE" and owner is not None and owner.bye_state is None:
            owner.bye_state = "by switch"
        body = sdp if meth == "INVITE" and sdp else None
        if meth == "INVITE" and owner is not None:
            port_now, addr_now = sdp_media(m.body)
            if port_now is not None:
                if side == "carrier":
                    owner.pa, owner.pa_addr = port_now, addr_now
                else:
                    owner.pb, owner.pb_addr = port_now, addr_now
        self._send(sock, self._response(m, 200, "OK", to_tag, port, body), addr)

    @staticmethod
    def _response(req, code, reason, to_tag, port, sdp=None):
        out = [f"SIP/2.0 {code} {reason}"]
        out += [f"Via: {v}" for v in req.hall("via")]
        to = req.h("to") or ""
        if tag_of(to) is None and to_tag:
            to += f";tag={to_tag}"
        out += [f"From: {req.h('from')}", f"To: {to}", f"Call-ID: {req.call_id}",
                f"CSeq: {req.h('cseq')}", f"Contact: <sip:{IDENTITY}@127.0.0.1:{port}>",
                "User-Agent: swb-media-bench"]
        if sdp:
            out.append("Content-Type: application/sdp")
        body = sdp or ""
        out.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(out) + "\r\n\r\n" + body).encode()

    def _on_client(self, m, addr):
        if m.status is not None:
            if m.cseq[1] == "REGISTER":
                if m.status >= 200:
                    self.reg = m.status
            else:
                self.stats["client_stray_responses"] += 1
            return
        leg = self.legs.get(m.call_id)
        if m.method == "INVITE" and (leg is None or tag_of(m.h("to")) is None):
            if leg is not None:                       # a retransmission of the initial INVITE
                self.stats["client_invite_retrans"] += 1
                self._send(self.usock, leg.resp, addr)
                return
            leg = Leg(m.call_id, m, f"ct{len(self.legs)}x{random.randrange(1 << 30)}")
            self.legs[m.call_id] = leg
            leg.pb, leg.pb_addr = sdp_media(m.body)
            # Pair with the carrier call: the caller number (From user) is unique per call.
            fm = re.search(r"sip:(\+?\d+)@", m.h("from") or "")
            c = self.by_caller.get(fm.group(1)) if fm else None
            if c is None or c.leg is not None:
                c = next((x for x in self.calls if x.leg is None and x.state != "failed"), None)
                self.stats["paired_by_order"] += 1
            if c is not None:
                c.leg, leg.call = leg, c
            leg.resp = self._response(m, 200, "OK", leg.to_tag, self.uport, self.client_sdp(c.i if c else 0))
            self._send(self.usock, leg.resp, addr)
            leg.tx = 1
            self._timer(T1, "200", (leg, addr), T1)
            return
        if m.method == "ACK" and leg is not None and not leg.acked:
            leg.acked = True
            self.stats["client_got_ACK"] += 1
            return
        self._answer_request(self.usock, m, addr, leg.to_tag if leg else "x", self.uport,
                             self.client_sdp(leg.call.i if leg and leg.call else 0), leg, "client")

    # -- the loop ---------------------------------------------------------------------------
    def _fire(self, kind, obj, interval):
        if kind == "inv":
            c = obj
            if c.state == "sent" and c.inv_tx < 7:             # Timer B: 64*T1 = 32 s
                self._send(self.csock, c.invite)
                c.inv_tx += 1
                self.stats["invite_retrans"] += 1
                self._timer(interval * 2, kind, c, interval * 2)
        elif kind == "200":
            leg, addr = obj
            if not leg.acked and leg.tx < 7:
                self._send(self.usock, leg.resp, addr)
                leg.tx += 1
                self.stats["client_200_retrans"] += 1
                self._timer(min(interval * 2, T2), kind, obj, min(interval * 2, T2))
        elif kind == "bye":
            c = obj
            if c.bye_state == "sent" and c.bye_tx < 10:        # Timer F: 64*T1 = 32 s
                self._send(self.csock, c.bye)
                c.bye_tx += 1
                self.stats["bye_retrans"] += 1
                self._timer(min(interval * 2, T2), kind, c, min(interval * 2, T2))

    def pump(self, timeout):
        """Receives and handles everything waiting (up to `timeout` s for the first), then fires
        due timers."""
        now = time.time()
        if self.timers:
            timeout = max(0.0, min(timeout, self.timers[0][0] - now))
        r, _, _ = select.select([self.csock, self.usock], [], [], timeout)
        for sock in r:
            for _ in range(512):
                try:
                    data, addr = sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                try:
                    m = Msg(data)
                except (ValueError, IndexError):
                    self.stats["unparsable"] += 1
                    continue
                (self._on_carrier if sock is self.csock else self._on_client)(m, addr)
        now = time.time()
        while self.timers and self.timers[0][0] <= now:
            _, _, kind, obj, interval = heapq.heappop(self.timers)
            self._fire(kind, obj, interval)

    def setup(self, n, rate, timeout):
        """Places n calls at `rate` calls/s; returns when every call has a final answer (and
        every answered client leg its ACK) or at the deadline."""
        base = len(self.calls)
        t0 = time.time()
        deadline = t0 + n / rate + timeout
        sent = 0
        while time.time() < deadline:
            now = time.time()
            while sent < n and t0 + sent / rate <= now:
                i = base + sent
                caller = f"+1555{i:07d}"
                c = Call(i, f"mb-{i}-{self.run_id}@127.0.0.1", caller)
                self.calls.append(c)
                self.by_cid[c.cid] = c
                self.by_caller[caller] = c
                c.invite = self._invite(c)
                c.state, c.t_sent = "sent", time.time()
                self._send(self.csock, c.invite)
                self._timer(T1, "inv", c, T1)
                sent += 1
            if sent == n and all(c.state in ("answered", "failed") and (c.leg is None or c.leg.acked)
                                 for c in self.calls[base:]):
                break
            nxt = t0 + sent / rate if sent < n else now + 0.05
            self.pump(max(0.0, min(0.05, nxt - time.time())))
        return time.time() - t0

    def hangup(self, rate, timeout):
        """BYE from the carrier for every answered call, paced; waits for the 200s and for the
        client's BYEs (answered with 200 in _answer_request)."""
        todo = [c for c in self.calls if c.state == "answered" and c.bye_state is None]
        t0 = time.time()
        deadline = t0 + len(todo) / rate + timeout
        sent = 0
        while time.time() < deadline:
            now = time.time()
            while sent < len(todo) and t0 + sent / rate <= now:
                c = todo[sent]
                c.bye = self._in_dialog(c, "BYE", 2)
                c.bye_state = "sent"
                self._send(self.csock, c.bye)
                self._timer(T1, "bye", c, T1)
                sent += 1
            if sent == len(todo) and all(c.bye_state != "sent" and (c.leg is None or c.leg.bye_got)
                                         for c in todo):
                break
            self.pump(0.02)
        return time.time() - t0


# ---------------------------------------------------------------------------------------
# Our side
# ---------------------------------------------------------------------------------------
def config_text(rtp_ports, media_threads, with_media):
    text = f"""# benches/media/run.py: a switch for relay load, on loopback only.
[server]
sip_listen = ["127.0.0.1:0"]
http_listen = "127.0.0.1:0"
realm = "{REALM}"
rtp_ports = "{rtp_ports}"

[[accounts]]
sid = "{ACCOUNT}"
auth_token = "media-bench-auth-token"

[[accounts.api_keys]]
sid = "{KEY_SID}"
secret = "media-bench-api-key-secret"

[[applications]]
sid = "{APP_SID}"
account = "{ACCOUNT}"
twiml = '{TWIML}'

[[trunks]]
name = "carrier"
account = "{ACCOUNT}"
inbound_cidrs = ["127.0.0.1/32"]

[[numbers]]
number = "{NUMBER}"
application = "{APP_SID}"

[registrar]
max_expires = 3600
default_expires = 3600

[calls]
keep_finished = 1000
max_concurrent = 100000

# One account holds every call of the bench: its default cap (80 % of the port pairs) would
# refuse the last calls of the top step with 503.
[limits]
account_max_calls = 1000000
"""
    if with_media:
        text += f"""
[media]
threads = {media_threads}
timeout_secs = 600
"""
    return text


def write_config(path, rtp_ports, media_threads):
    """Writes the config and validates it with `switchboard check`. A build from before the
    [media] table existed rejects it: the table is then left out (media_table: false)."""
    for with_media in (True, False):
        with open(path, "w") as f:
            f.write(config_text(rtp_ports, media_threads, with_media))
        chk = subprocess.run([BIN, "check", "-c", path], capture_output=True, text=True, timeout=30)
        if chk.returncode == 0:
            return with_media
        msg = (chk.stderr or chk.stdout).strip()
        if not (with_media and "media" in msg):
            raise RuntimeError(f"switchboard check -c {path} failed: {msg}")
    raise RuntimeError("unreachable")


def mint_token(cfg):
    tok = subprocess.run([BIN, "token", "-c", cfg, "--identity", IDENTITY, "--incoming",
                          "--ttl", "3600"], capture_output=True, text=True, timeout=30)
    lines = tok.stdout.strip().splitlines()
    if tok.returncode != 0 or not lines:
        raise RuntimeError(f"switchboard token failed: {tok.stderr.strip()}")
    return lines[-1].strip()


def ours_step(ctx, streams, seconds, direct):
    calls = streams // 2
    d, tag = ctx["run_dir"], f"ours-{streams}"
    cfg = os.path.join(d, f"{tag}.toml")
    media_table = write_config(cfg, ctx["rtp_ports"], ctx["media_threads"])
    token = mint_token(cfg)
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "warn")
    out_p, err_p = os.path.join(d, f"{tag}-switch.out"), os.path.join(d, f"{tag}-switch.err")
    with open(out_p, "w") as out, open(err_p, "w") as err:
        sw = start([BIN, "run", "-c", cfg], cwd=d, env=env, stdout=out, stderr=err)
    res = dict(system="ours", streams=streams, calls=calls, seconds=seconds, media_table=media_table,
               rtp_ports=ctx["rtp_ports"])
    sip = None
    try:
        wait_line(out_p, r"^ready$", sw, 20, "switchboard")
        host, port = wait_line(out_p, r"^listening sip/udp (\S+):(\d+)$", sw, 1, "switchboard").groups()
        sip = SipBench((host, int(port)), token)
        sip.register()
        rss0, cpu0 = rss_mb(sw.pid), proc_cpu(sw.pid)
        setup_s = sip.setup(calls, ctx["setup_rate"], timeout=15)
        setup_cpu = proc_cpu(sw.pid) - cpu0
        cs = sip.calls
        answered = [c for c in cs if c.state == "answered"]
        lat = [1000 * (c.t_final - c.t_sent) for c in answered]
        codes = collections.Counter(str(c.code) for c in cs if c.state == "failed")
        paired = [c for c in answered if c.leg is not None and c.pa and c.leg.pb]
        relayed = [c for c in paired if c.pa not in (A_PORT, B_PORT) and c.leg.pb not in (A_PORT, B_PORT)]
        passthrough = [c for c in paired if (c.pa, c.leg.pb) == (B_PORT, A_PORT)]
        addrs = sorted({c.pa_addr for c in paired} | {c.leg.pb_addr for c in paired}, key=str)
        res["setup"] = dict(
            answered=len(answered), failed=dict(codes),
            no_final=sum(1 for c in cs if c.state in ("sent", "proceeding")),
            client_legs=len(sip.legs), client_acked=sum(1 for l in sip.legs.values() if l.acked),
            paired=len(paired), seconds=round(setup_s, 1),
            calls_per_s=round(len(answered) / setup_s, 1) if setup_s else None,
            invite_to_200_ms_p50=round(pct(lat, 0.5), 1) if lat else None,
            invite_to_200_ms_p99=round(pct(lat, 0.99), 1) if lat else None,
            switch_cpu_pct=round(100 * setup_cpu / setup_s, 1) if setup_s else None,
            media_addrs=addrs, distinct_pa=len({c.pa for c in paired}),
            distinct_pb=len({c.leg.pb for c in paired}),
            sip=dict(sorted((k, v) for k, v in sip.stats.items())))
        res["rss_mb_idle"] = rss0
        res["rss_mb_after_setup"] = rss_mb(sw.pid)
        if rss0 is not None and res["rss_mb_after_setup"] is not None and answered:
            res["rss_kb_per_call"] = round(1024 * (res["rss_mb_after_setup"] - rss0) / len(answered), 1)
        bad_addr = [a for a in addrs if a != "127.0.0.1"]
        if passthrough and not relayed:
            res["relayed"] = False
            res["note"] = (f"the switch passed SDP end to end (PA={B_PORT}, PB={A_PORT}): no relay "
                           "in this build; generator not run for ours")
        elif relayed:
            res["relayed"] = True if len(relayed) == calls else "partial"
            res["calls_relayed"] = len(relayed)
            if bad_addr:
                res["relayed"] = False
                res["note"] = f"SDP connection address {bad_addr}: rtpload sends only to 127.0.0.1"
        else:
            res["relayed"] = None
            res["note"] = "no call was answered with usable SDP ports"
        if res["relayed"] in (True, "partial"):
            log(f"  [ours] {len(relayed)} calls relayed; rtpload {seconds} s")
            g = run_gen(ctx, [(c.pa, c.leg.pb) for c in relayed], seconds, tag, sw.pid, sip.pump)
            judge(res, g, direct, seconds, calls, len(relayed))
            res["rss_mb"] = rss_mb(sw.pid)
        else:
            res["clean"] = None
        if sw.poll() is not None:
            res["switch_exited"] = sw.returncode
        hang_s = sip.hangup(max(ctx["setup_rate"], 500), timeout=10)
        res["bye"] = dict(sent=sum(1 for c in answered if c.bye_state is not None),
                          ok=sum(1 for c in answered if c.bye_state == "ok"),
                          by_switch=sum(1 for c in answered if c.bye_state == "by switch"),
                          client_got_bye=sum(1 for l in sip.legs.values() if l.bye_got),
                          seconds=round(hang_s, 1))
    finally:
        if sip:
            sip.close()
        stop_proc(sw)
    with open(err_p, errors="replace") as f:
        tail = [l.rstrip() for l in f.readlines()[-3:]]
    if tail and (res.get("clean") is False or res.get("relayed") is not True):
        res["switch_log_tail"] = tail
    return res


# ---------------------------------------------------------------------------------------
# rtpengine over its NG protocol (bencode over UDP)
# ---------------------------------------------------------------------------------------
def benc(o):
    if isinstance(o, dict):
        return b"d" + b"".join(benc(k) + benc(o[k]) for k in sorted(o)) + b"e"
    if isinstance(o, list):
        return b"l" + b"".join(benc(x) for x in o) + b"e"
    if isinstance(o, int):
        return b"i%de" % o
    if isinstance(o, str):
        o = o.encode()
    return b"%d:%s" % (len(o), o)


def bdec(b, i=0):
    c = b[i:i + 1]
    if c == b"d":
        i, d = i + 1, {}
        while b[i:i + 1] != b"e":
            k, i = bdec(b, i)
            d[k.decode()], i = bdec(b, i)
        return d, i + 1
    if c == b"l":
        i, l = i + 1, []
        while b[i:i + 1] != b"e":
            v, i = bdec(b, i)
            l.append(v)
        return l, i + 1
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


class Ng:
    def __init__(self, addr):
        self.addr, self.n = addr, 0
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))

    def cmd(self, d, timeout=2.0, tries=3):
        self.n += 1
        cookie = b"mb%d " % self.n
        pkt = cookie + benc(d)
        for _ in range(tries):
            self.s.sendto(pkt, self.addr)
            self.s.settimeout(timeout)
            try:
                while True:
                    data, _ = self.s.recvfrom(65535)
                    if data.startswith(cookie):
                        return bdec(data[len(cookie):])[0]
            except socket.timeout:
                continue
        raise RuntimeError(f"rtpengine NG: no answer to {d.get('command')}")

    def close(self):
        self.s.close()


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rtpengine_step(ctx, streams, seconds, direct):
    calls = streams // 2
    d, tag = ctx["run_dir"], f"rtpengine-{streams}"
    ng_addr = ("127.0.0.1", free_udp_port())
    logf = os.path.join(d, f"{tag}.log")
    cmd = ["rtpengine", "--config-file=none", "--foreground", "--log-stderr", "-L", "3",
           "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{ng_addr[1]}", "--table=-1",
           f"--port-min={ctx['rtpengine_ports'][0]}", f"--port-max={ctx['rtpengine_ports'][1]}",
           f"--num-threads={ctx['rtpengine_threads']}", "--timeout=600", "--delete-delay=0",
           f"--pidfile={os.path.join(d, tag + '.pid')}"]
    with open(logf, "w") as out:
        p = start(cmd, stdout=out, stderr=subprocess.STDOUT)
    res = dict(system="rtpengine", streams=streams, calls=calls, seconds=seconds,
               threads=ctx["rtpengine_threads"], ports=f"{ctx['rtpengine_ports'][0]}-{ctx['rtpengine_ports'][1]}")
    ng = Ng(ng_addr)
    try:
        t_end = time.time() + 10
        while True:
            if p.poll() is not None:
                with open(logf, errors="replace") as f:
                    raise RuntimeError(f"rtpengine exited {p.returncode}: {f.read()[-600:]}")
            try:
                if ng.cmd({"command": "ping"}, timeout=0.3, tries=1).get("result") == b"pong":
                    break
            except RuntimeError:
                if time.time() > t_end:
                    raise RuntimeError("rtpengine: no pong on its NG port within 10 s")
        rss0 = rss_mb(p.pid)
        t0, pairs, errors = time.time(), [], []
        for i in range(calls):
            cid = f"mb-{i}"
            o = ng.cmd({"command": "offer", "call-id": cid, "from-tag": f"a{i}", "sdp": carrier_sdp(i)})
            a = ng.cmd({"command": "answer", "call-id": cid, "from-tag": f"a{i}", "to-tag": f"b{i}",
                        "sdp": client_sdp(i)})
            if o.get("result") != b"ok" or a.get("result") != b"ok":
                errors.append(str(o.get("error-reason") or a.get("error-reason"))[:100])
                continue
            # A sends to the port in the answer (relayed to B); B to the port in the offer.
            pairs.append((sdp_media(a["sdp"])[0], sdp_media(o["sdp"])[0]))
        setup_s = time.time() - t0
        res["setup"] = dict(answered=len(pairs), failed=len(errors), errors=errors[:3],
                            seconds=round(setup_s, 1),
                            ng_ms_per_call=round(1000 * setup_s / max(1, calls), 3))
        res["relayed"] = bool(pairs)
        res["rss_mb_idle"], res["rss_mb_after_setup"] = rss0, rss_mb(p.pid)
        if pairs and rss0 is not None:
            res["rss_kb_per_call"] = round(1024 * (res["rss_mb_after_setup"] - rss0) / len(pairs), 1)
        log(f"  [rtpengine] {len(pairs)} calls set up; rtpload {seconds} s")
        g = run_gen(ctx, pairs, seconds, tag, p.pid)
        judge(res, g, direct, seconds, calls, len(pairs))
        res["rss_mb"] = rss_mb(p.pid)
        for i in range(calls):
            try:
                ng.cmd({"command": "delete", "call-id": f"mb-{i}", "from-tag": f"a{i}"}, timeout=1, tries=1)
            except RuntimeError:
                pass
    finally:
        ng.close()
        stop_proc(p, grace=10)
    return res


# ---------------------------------------------------------------------------------------
def ensure_tools(need_rtpengine):
    missing = [t for t in ["gcc"] + (["rtpengine"] if need_rtpengine else []) if not shutil.which(t)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing {missing} (apt-get install -y rtpengine-daemon gcc)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "rtpengine-daemon", "gcc"], env=env,
                       timeout=900, stdout=subprocess.DEVNULL)
        missing = [t for t in missing if not shutil.which(t)]
    if missing:
        raise SystemExit(f"{missing} not found: apt-get install -y rtpengine-daemon gcc")


def port_ranges(max_calls):
    """Ours: RTP_LOW.. wide enough for 2 legs x (RTP+RTCP) per call plus 5 % (at least up to
    29999); rtpengine: from just above ours to 65000 (the two never run at once)."""
    need = int(4 * max_calls * 1.05) + 2
    hi = max(29999, RTP_LOW + need - 1)
    if hi % 2 == 0:
        hi += 1
    try:
        lo_eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        lo_eph = 32768
    return f"{RTP_LOW}-{hi}", (max(30000, hi + 1), 65000), hi >= lo_eph


def step_summary(r):
    if r is None:
        return None
    if "error" in r:
        return r
    keep = ("clean", "relayed", "loss_pct", "added_us_p50", "added_us_p99", "added_us_p999",
            "lat_us_p99", "relay_cpu_pct", "rss_mb", "others_cpu_pct")
    return {k: r[k] for k in keep if k in r}


def main():
    global BIN
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"one step: {QUICK_STREAMS} streams for {QUICK_SECONDS} s")
    ap.add_argument("--streams", help=f"comma-separated stream counts (default {LADDER}); 2 per call")
    ap.add_argument("--seconds", type=int, help="seconds of RTP per system and step (default 20; max 60)")
    ap.add_argument("--setup-rate", type=int, default=200, help="our SIP call setup rate, calls/s (default 200)")
    ap.add_argument("--rtpengine-threads", type=int, default=2, help="rtpengine --num-threads (default 2)")
    ap.add_argument("--media-threads", type=int, default=0, help="our [media] threads (default 0 = one per core)")
    ap.add_argument("--budget", type=int, default=900, help="no new step after this many seconds (default 900)")
    ap.add_argument("--keep-going", action="store_true", help="run every step even after a system's unclean one")
    ap.add_argument("--no-direct", action="store_true", help="skip the direct baseline (no added_us_* figures)")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--skip-rtpengine", action="store_true")
    ap.add_argument("--peers", default=PEERS,
                    help="the peers' directory (default ../shared/peers beside the repo)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bin", help="switch binary (implies --no-build)")
    ap.add_argument("--no-quiet-wait", action="store_true")
    ap.add_argument("--json-out", help="also write every step's details to this file")
    a = ap.parse_args()

    seconds = a.seconds or (QUICK_SECONDS if a.quick else 20)
    if not 1 <= seconds <= 60:
        raise SystemExit("--seconds must be 1..60")
    ladder = ([int(x) for x in a.streams.split(",")] if a.streams
              else [QUICK_STREAMS] if a.quick else LADDER)
    if any(s < 2 or s % 2 or s > 40000 for s in ladder):
        raise SystemExit("--streams: even counts from 2 to 40000 (2 streams per call)")
    t_start = time.time()
    ensure_tools(not a.skip_rtpengine)
    if not gen_ports_free():
        raise SystemExit(f"UDP 127.0.0.1:{A_PORT} or :{B_PORT} is in use: rtpload needs both")
    BIN = os.path.abspath(a.bin) if a.bin else BIN
    build_note = None
    if not a.skip_ours and not (a.no_build or a.bin):
        log("cargo build --release --bin switchboard")
        b = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "switchboard"], cwd=REPO,
                           capture_output=True, text=True, timeout=1800)
        if b.returncode != 0:
            err = [l for l in b.stderr.splitlines() if l.startswith("error")]
            log("  " + "\n  ".join(err[:3] + err[-1:]))
            if os.path.exists(BIN):
                built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(BIN)))
                build_note = f"cargo build failed; used the existing binary built {built}"
                log(build_note)
            else:
                raise SystemExit("cargo build failed and there is no target/release/switchboard")

    run_dir = tempfile.mkdtemp(prefix="swb-mediabench-")
    rtp_ports, rtpe_ports, in_ephemeral = port_ranges(max(ladder) // 2)
    ctx = dict(run_dir=run_dir, rtpload=build_rtpload(a.peers, run_dir), rtp_ports=rtp_ports,
               rtpengine_ports=rtpe_ports, rtpengine_threads=a.rtpengine_threads,
               media_threads=a.media_threads, setup_rate=a.setup_rate)
    report = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), ladder=ladder, seconds=seconds,
                  cores=os.cpu_count(), criterion=f"loss <= {CLEAN_LOSS_PCT}% and generator sent >= "
                  f"{MIN_SENT_SHARE:.0%} of offer and every call set up and relayed",
                  commit=subprocess.run(["git", "log", "--oneline", "-1"], cwd=REPO,
                                        capture_output=True, text=True).stdout.strip(), steps=[])
    if build_note:
        report["build"] = build_note
    if in_ephemeral:
        report["warning"] = f"our rtp_ports {rtp_ports} reach the ephemeral port range"

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    prev = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in prev:
        signal.signal(s, interrupted)
    live = {n for n, skip in (("ours", a.skip_ours), ("rtpengine", a.skip_rtpengine)) if not skip}
    results = {n: [] for n in live}
    quiet = Quiet(0 if a.no_quiet_wait else 10, 0 if a.no_quiet_wait else 60)
    budget_cut = False
    try:
        for streams in ladder:
            if not live:
                break
            calls = streams // 2
            cost = (3 if not a.no_direct else 2) * (seconds + 2) + 2 * calls / a.setup_rate + 30
            if time.time() - t_start + cost > a.budget:
                log(f"time budget reached: step {streams} not run")
                budget_cut = True
                break
            step = dict(streams=streams, calls=calls, seconds=seconds)
            step["busy_before_pct"] = quiet.wait()
            direct = None
            if not a.no_direct:
                log(f"[direct] {streams} streams x {seconds} s")
                try:
                    direct = direct_step(ctx, calls, seconds)
                except Exception as e:
                    direct = None
                    step["direct_error"] = str(e)[:400]
                step["direct"] = direct
            for name, fn in (("ours", ours_step), ("rtpengine", rtpengine_step)):
                if name not in live:
                    continue
                log(f"[{name}] {streams} streams ({calls} calls) x {seconds} s")
                try:
                    r = fn(ctx, streams, seconds, direct)
                except Exception as e:
                    r = dict(system=name, streams=streams, clean=False, error=str(e)[:800])
                results[name].append(r)
                step[name] = r
                log("  " + compact(step_summary(r)))
                if name == "ours" and r.get("relayed") is False and "error" not in r:
                    # No relay in this build: keep exercising the SIP setup while it succeeds.
                    if r["setup"]["answered"] < calls and not a.keep_going:
                        live.discard(name)
                elif r.get("clean") is not True and not a.keep_going:
                    live.discard(name)
            report["steps"].append(step)
            print(compact(step), flush=True)

        def top(name):
            rs = results.get(name)
            if rs is None:
                return None
            clean = [r["streams"] for r in rs if r.get("clean") is True]
            return max(clean) if clean else 0

        def at(name, streams, key):
            for r in results.get(name, []):
                if r["streams"] == streams and r.get("clean") is True:
                    return r.get(key)
            return None

        ours_relayed = None
        if results.get("ours"):
            rel = [r.get("relayed") for r in results["ours"] if "relayed" in r]
            ours_relayed = (True if rel and all(x is True for x in rel)
                            else False if rel and all(x is False for x in rel) else (rel[-1] if rel else None))
        top_o = top("ours") if ours_relayed not in (False, None) else None
        top_r = top("rtpengine")
        summary = dict(
            ours_clean_streams=top_o, rtpengine_clean_streams=top_r,
            ratio=round(top_o / top_r, 2) if top_o is not None and top_r else None,
            ours_relayed=ours_relayed,
            ours_added_us_p99=at("ours", top_o, "added_us_p99") if top_o else None,
            rtpengine_added_us_p99=at("rtpengine", top_r, "added_us_p99") if top_r else None,
            ours_p99_under_1ms=(at("ours", top_o, "added_us_p99") or 10 ** 9) < OUR_P99_TARGET_US if top_o else None,
            ours_cpu_pct=at("ours", top_o, "relay_cpu_pct") if top_o else None,
            rtpengine_cpu_pct=at("rtpengine", top_r, "relay_cpu_pct") if top_r else None,
            ours_rss_mb=at("ours", top_o, "rss_mb") if top_o else None,
            rtpengine_rss_mb=at("rtpengine", top_r, "rss_mb") if top_r else None,
            ours_top_step_failed=bool(results.get("ours")) and results["ours"][-1].get("clean") is False,
            rtpengine_top_step_failed=bool(results.get("rtpengine")) and results["rtpengine"][-1].get("clean") is False,
            criterion=report["criterion"], seconds_per_step=seconds, budget_cut=budget_cut,
            seconds=round(time.time() - t_start))
        if build_note:
            summary["build"] = build_note
        if ours_relayed is False:
            summary["note"] = "our build does not relay RTP yet (SDP passed end to end): no figure for ours"
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
