#!/usr/bin/env python3
"""Bridged SRTP<->RTP streams: Switchboard's media relay vs rtpengine (userspace), same run.

    python3 benches/srtp/run.py [--quick] [--streams 200,500,1000,2000] [--seconds 10]

See README.md beside this file. In short, each step of S streams (S/2 calls) runs, in order:
  direct     the generator's A sides talk DTLS-SRTP to in-process stand-ins (no relay), with
             S/4 calls (two str0m sessions each: the generator's SRTP work of S/2 relayed
             calls): the baseline latency subtracted below;
  ours       a fresh switch; S/2 calls set up over SIP (reusing benches/media/run.py's SIP
             machinery): the carrier offers UDP/TLS/RTP/SAVPF with the generator's ICE
             credentials, fingerprint and SSRC, the registered client `bench` answers plain
             RTP/AVP; then ICE + DTLS + S/2 x 2 streams for the given seconds; then BYE;
  rtpengine  a fresh rtpengine --table=-1; the same calls over its NG protocol (offer: SAVPF
             from the generator, turned into plain RTP/AVP towards B; answer: plain from B,
             turned into DTLS-SRTP with ICE towards the generator); then the same streams.
The generator is examples/srtp_load.rs (str0m: full ICE, DTLS client, SRTP on side A; plain
UDP on side B). A step is clean when loss <= 0.1 %, the generator sent >= 99 % of its offered
packets and every call was set up (SIP/NG answer and DTLS handshake). Everything runs on
127.0.0.1; every process started here is stopped by its PID; each phase has a time bound.
Python standard library only.
"""
import argparse
import collections
import json
import os
import re
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "benches", "media"))
import run as media  # noqa: E402  (benches/media/run.py: SIP, config, rtpengine NG, /proc)

GEN = os.path.join(REPO, "target", "release", "examples", "srtp_load")
LADDER = [100, 250, 500, 1000, 2000]
QUICK_STREAMS, QUICK_SECONDS = 100, 5
CLEAN_LOSS_PCT = media.CLEAN_LOSS_PCT
MIN_SENT_SHARE = media.MIN_SENT_SHARE
OUR_P99_TARGET_US = 1000
log, compact, pct = media.log, media.compact, media.pct


# ---------------------------------------------------------------------------------------
# The generator: phase 1 (its offers), phase 2 (the relay's answers), then its result
# ---------------------------------------------------------------------------------------
class Gen:
    """srtp_load CALLS SECONDS: reads its per-call offer parameters, takes the answers."""

    def __init__(self, ctx, calls, seconds, tag, direct=False):
        self.calls, self.seconds = calls, seconds
        self.errf = os.path.join(ctx["run_dir"], f"{tag}.gen.err")
        cmd = [ctx["gen"], str(calls), str(seconds), "--threads", str(ctx["gen_threads"]),
               "--connect-timeout", str(ctx["connect_timeout"])]
        if direct:
            cmd.append("--direct")
        with open(self.errf, "w") as err:
            self.p = media.start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self.buf = b""
        self.offers = []
        deadline = time.time() + 30 + calls / 100
        while True:
            line = self._line(deadline)
            if line is None:
                raise RuntimeError(f"srtp_load: no phase-1 output ({self._err()})")
            o = json.loads(line)
            if "ready" in o:
                break
            self.offers.append(o)
        if len(self.offers) != calls:
            raise RuntimeError(f"srtp_load: {len(self.offers)} offers for {calls} calls")

    def _err(self):
        with open(self.errf, errors="replace") as f:
            return f.read()[-400:].strip()

    def _line(self, deadline):
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def go(self, answers):
        """Phase 2: one line per call that was set up, then go."""
        data = "".join(compact(a) + "\n" for a in answers) + compact({"go": True}) + "\n"
        self.p.stdin.write(data.encode())
        self.p.stdin.flush()
        self.p.stdin.close()

    def finish(self, relay_pid=None, pump=None):
        """Waits for the result line (bounded), pumping SIP meanwhile. Returns the generator's
        JSON plus CPU figures of the relay, the generator and everything else."""
        c_relay = media.proc_cpu(relay_pid) if relay_pid else 0.0
        c_kids, c_self = media.children_cpu(), media.self_cpu()
        b0, e0, t0 = media.machine_busy_s(), media.udp_rcvbuf_errors(), time.time()
        bound = t0 + self.seconds + self.calls / 50 + 60
        out = None
        marks = {}

        def snap():
            return dict(t=time.time(), relay=media.proc_cpu(relay_pid) if relay_pid else 0.0,
                        gen=media.proc_cpu(self.p.pid), busy=media.machine_busy_s(), me=media.self_cpu())

        try:
            while time.time() < bound:
                if pump:
                    pump(0.05)
                r, _, _ = select.select([self.p.stdout.fileno()], [], [], 0 if pump else 0.2)
                if r or b"\n" in self.buf:
                    out = self._line(time.time() + 0.5)
                    if out is not None and out.startswith('{"media"'):
                        marks[json.loads(out)["media"]] = snap()
                        continue
                    if out is not None and out.startswith("{"):
                        break
                    if out is None and self.p.poll() is not None:
                        break
            relay_cpu = (media.proc_cpu(relay_pid) - c_relay) if relay_pid else 0.0
        finally:
            media.stop_proc(self.p)
        # The generator is the only child reaped meanwhile (the relay still runs).
        gen_cpu = media.children_cpu() - c_kids
        wall = time.time() - t0
        busy = media.machine_busy_s() - b0
        if not out or not out.startswith("{"):
            raise RuntimeError(f"srtp_load printed no result (rc {self.p.returncode}): {self._err()}")
        g = json.loads(out)
        # Over the media phase alone (between the generator's marks), and over the whole run
        # (ICE + DTLS handshakes included).
        a, b = marks.get("start"), marks.get("end")
        if a and b and b["t"] > a["t"]:
            w = b["t"] - a["t"]
            g["relay_cpu_pct"] = round(100 * (b["relay"] - a["relay"]) / w, 1)
            g["gen_cpu_pct"] = round(100 * (b["gen"] - a["gen"]) / w, 1)
            g["others_cpu_pct"] = round(max(0.0, 100 * ((b["busy"] - a["busy"]) - (b["relay"] - a["relay"])
                                                        - (b["gen"] - a["gen"]) - (b["me"] - a["me"])) / w), 1)
            g["media_wall_s"] = round(w, 2)
        g["relay_cpu_pct_whole_run"] = round(100 * relay_cpu / wall, 1)
        g["gen_cpu_pct_whole_run"] = round(100 * gen_cpu / wall, 1)
        g["others_cpu_pct_whole_run"] = round(max(0.0, 100 * (busy - relay_cpu - gen_cpu - (media.self_cpu() - c_self)) / wall), 1)
        g["udp_rcvbuf_errors"] = media.udp_rcvbuf_errors() - e0
        g["gen_wall_s"] = round(wall, 1)
        err = self._err()
        if err:
            g["gen_stderr_tail"] = err.splitlines()[-2:]
        return g

    def abort(self):
        media.stop_proc(self.p)


def secure_offer(o, i):
    """The carrier's SAVPF offer for call i from the generator's phase-1 line."""
    return ("v=0\r\n"
            f"o=carrier {i + 1} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {o['a_port']} UDP/TLS/RTP/SAVPF 0 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
            f"a=ice-ufrag:{o['ufrag']}\r\na=ice-pwd:{o['pwd']}\r\n"
            f"a=fingerprint:{o['fingerprint']}\r\na=setup:actpass\r\na=mid:0\r\na=rtcp-mux\r\n"
            f"a=candidate:1 1 udp 2130706431 127.0.0.1 {o['a_port']} typ host\r\n"
            f"a=ssrc:{o['ssrc_a']} cname:swb{i}\r\na=sendrecv\r\n")


def plain_answer(o, i):
    return ("v=0\r\n"
            f"o=bench {i + 1} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {o['b_port']} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def secure_answer_params(body):
    """What the generator needs from a relay's SAVPF answer, or (None, reason)."""
    t = body.decode("utf-8", "replace") if isinstance(body, bytes) else body

    def attr(name):
        m = re.search(rf"^a={name}:(.+?)\s*$", t, re.M)
        return m.group(1) if m else None

    if not re.search(r"^m=audio \d+ UDP/TLS/RTP/SAVPF", t, re.M):
        return None, "answer is not UDP/TLS/RTP/SAVPF"
    ufrag, pwd, fp = attr("ice-ufrag"), attr("ice-pwd"), attr("fingerprint")
    if not (ufrag and pwd and fp):
        return None, "answer lacks ice-ufrag, ice-pwd or fingerprint"
    if not fp.lower().startswith("sha-256 "):
        return None, f"fingerprint is not sha-256: {fp[:20]}"
    fp = "sha-256 " + fp.split(" ", 1)[1].strip()
    addr = None
    for m in re.finditer(r"^a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host", t, re.M | re.I):
        if m.group(1) == "127.0.0.1":
            addr = f"127.0.0.1:{m.group(2)}"
            break
    if addr is None:
        port, host = media.sdp_media(t.encode())
        if host != "127.0.0.1" or not port:
            return None, f"no 127.0.0.1 candidate or connection address ({host})"
        addr = f"127.0.0.1:{port}"
    return dict(relay_a=addr, ufrag=ufrag, pwd=pwd, fingerprint=fp,
                setup=(attr("setup") or "passive").strip().lower(),
                rtcp_mux=bool(re.search(r"^a=rtcp-mux", t, re.M))), None


GEN_KEYS = ("calls_run", "handshakes_ok", "handshakes_failed", "handshake_ms_p50", "handshake_ms_p99",
            "handshake_ms_max", "offered_pps", "sent", "send_err", "received", "loss_pct", "lat_us_p50",
            "lat_us_p99", "lat_us_p999", "lat_us_max", "misrouted", "rtc_errors", "a2b", "b2a",
            "relay_cpu_pct", "gen_cpu_pct", "others_cpu_pct", "media_wall_s", "relay_cpu_pct_whole_run",
            "gen_cpu_pct_whole_run", "others_cpu_pct_whole_run", "udp_rcvbuf_errors", "timer_runs",
            "gen_stderr_tail")


def judge(res, g, direct, seconds, calls_wanted, calls_set_up):
    res.update({k: g.get(k) for k in GEN_KEYS if k in g})
    offered = g["offered_pps"] * seconds
    res["sent_share"] = round(g["sent"] / offered, 4) if offered else 0.0
    if direct:
        for q in ("p50", "p99", "p999"):
            if g.get(f"lat_us_{q}") is not None and direct.get(f"lat_us_{q}") is not None:
                res[f"added_us_{q}"] = max(0, int(g[f"lat_us_{q}"]) - int(direct[f"lat_us_{q}"]))
    reasons = []
    if calls_set_up < calls_wanted:
        reasons.append(f"only {calls_set_up} of {calls_wanted} calls set up")
    if (g.get("handshakes_ok") or 0) < calls_wanted:
        reasons.append(f"{g.get('handshakes_ok')} of {calls_wanted} DTLS handshakes completed")
    if g["loss_pct"] > CLEAN_LOSS_PCT:
        reasons.append(f"loss {g['loss_pct']}% > {CLEAN_LOSS_PCT}%")
    if res["sent_share"] < MIN_SENT_SHARE:
        reasons.append(f"generator sent {res['sent_share']:.1%} of its offer")
    if g.get("misrouted"):
        reasons.append(f"{g['misrouted']} packets reached another call")
    res["clean"] = not reasons
    if reasons:
        res["not_clean"] = reasons


def direct_step(ctx, calls, seconds):
    """The baseline with half the calls: each direct call runs two str0m sessions (A and its
    stand-in), so calls/2 direct calls do the generator's SRTP work of `calls` relayed ones."""
    calls = max(1, calls // 2)
    gen = Gen(ctx, calls, seconds, f"direct-{calls}", direct=True)
    gen.go([])
    g = gen.finish()
    keep = ("handshakes_ok", "loss_pct", "lat_us_p50", "lat_us_p99", "lat_us_p999", "lat_us_max",
            "gen_cpu_pct", "others_cpu_pct", "sent")
    return dict(calls=calls, **{k: g.get(k) for k in keep})


# ---------------------------------------------------------------------------------------
# Ours
# ---------------------------------------------------------------------------------------
def ours_step(ctx, streams, seconds, direct):
    calls = streams // 2
    d, tag = ctx["run_dir"], f"ours-{streams}"
    cfg = os.path.join(d, f"{tag}.toml")
    media.write_config(cfg, ctx["rtp_ports"], ctx["media_threads"])
    token = media.mint_token(cfg)
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "warn")
    out_p, err_p = os.path.join(d, f"{tag}-switch.out"), os.path.join(d, f"{tag}-switch.err")
    with open(out_p, "w") as out, open(err_p, "w") as err:
        sw = media.start([media.BIN, "run", "-c", cfg], cwd=d, env=env, stdout=out, stderr=err)
    res = dict(system="ours", streams=streams, calls=calls, seconds=seconds)
    sip = gen = None
    try:
        media.wait_line(out_p, r"^ready$", sw, 20, "switchboard")
        host, port = media.wait_line(out_p, r"^listening sip/udp (\S+):(\d+)$", sw, 1, "switchboard").groups()
        gen = Gen(ctx, calls, seconds, tag)
        offers = gen.offers
        sip = media.SipBench((host, int(port)), token,
                             carrier_sdp_fn=lambda i: secure_offer(offers[i], i),
                             client_sdp_fn=lambda i: plain_answer(offers[i], i))
        sip.register()
        rss0, cpu0 = media.rss_mb(sw.pid), media.proc_cpu(sw.pid)
        setup_s = sip.setup(calls, ctx["setup_rate"], timeout=15)
        setup_cpu = media.proc_cpu(sw.pid) - cpu0
        cs = sip.calls
        answered = [c for c in cs if c.state == "answered"]
        lat = [1000 * (c.t_final - c.t_sent) for c in answered]
        answers, problems = [], collections.Counter()
        for c in answered:
            if c.leg is None or not c.leg.pb:
                problems["no client leg"] += 1
                continue
            if c.leg.pb_addr != "127.0.0.1":
                problems[f"client leg address {c.leg.pb_addr}"] += 1
                continue
            p, why = secure_answer_params(c.ok.body)
            if p is None:
                problems[why] += 1
                continue
            if not p.pop("rtcp_mux"):
                problems["answer without a=rtcp-mux (sent anyway)"] += 1
            answers.append(dict(call=c.i, relay_b=f"127.0.0.1:{c.leg.pb}", **p))
        res["setup"] = dict(
            answered=len(answered),
            failed=dict(collections.Counter(str(c.code) for c in cs if c.state == "failed")),
            no_final=sum(1 for c in cs if c.state in ("sent", "proceeding")),
            usable_answers=len(answers), problems=dict(problems), seconds=round(setup_s, 1),
            invite_to_200_ms_p50=round(pct(lat, 0.5), 1) if lat else None,
            invite_to_200_ms_p99=round(pct(lat, 0.99), 1) if lat else None,
            switch_cpu_pct=round(100 * setup_cpu / setup_s, 1) if setup_s else None,
            sip=dict(sorted((k, v) for k, v in sip.stats.items())))
        if answered and not answers:
            res["answer_sdp_example"] = answered[0].ok.body.decode("utf-8", "replace")[:900]
        res["rss_mb_idle"], res["rss_mb_after_setup"] = rss0, media.rss_mb(sw.pid)
        log(f"  [ours] {len(answers)} of {calls} calls set up; ICE+DTLS, then {seconds} s of media")
        gen.go(answers)
        g = gen.finish(sw.pid, sip.pump)
        judge(res, g, direct, seconds, calls, len(answers))
        res["rss_mb"] = media.rss_mb(sw.pid)
        if sw.poll() is not None:
            res["switch_exited"] = sw.returncode
        hang_s = sip.hangup(max(ctx["setup_rate"], 500), timeout=10)
        res["bye"] = dict(ok=sum(1 for c in answered if c.bye_state == "ok"),
                          by_switch=sum(1 for c in answered if c.bye_state == "by switch"),
                          seconds=round(hang_s, 1))
    finally:
        if gen:
            gen.abort()
        if sip:
            sip.close()
        media.stop_proc(sw)
    with open(err_p, errors="replace") as f:
        tail = [l.rstrip()[:300] for l in f.readlines()[-3:]]
    if tail and res.get("clean") is not True:
        res["switch_log_tail"] = tail
    return res


# ---------------------------------------------------------------------------------------
# rtpengine
# ---------------------------------------------------------------------------------------
# Offer (from the SRTP side A, towards the plain side B) and answer (from B, back to A).
NG_OFFER_FLAGS = {"transport-protocol": "RTP/AVP", "ICE": "remove", "rtcp-mux": ["demux"],
                  "replace": ["origin", "session-connection"]}
NG_ANSWER_FLAGS = {"transport-protocol": "UDP/TLS/RTP/SAVPF", "ICE": "force", "DTLS": "passive",
                   "rtcp-mux": ["require"], "SDES": ["off"], "replace": ["origin", "session-connection"]}


def rtpengine_step(ctx, streams, seconds, direct):
    calls = streams // 2
    d, tag = ctx["run_dir"], f"rtpengine-{streams}"
    ng_addr = ("127.0.0.1", media.free_udp_port())
    logf = os.path.join(d, f"{tag}.log")
    cmd = ["rtpengine", "--config-file=none", "--foreground", "--log-stderr", "-L", str(ctx["rtpengine_log_level"]),
           "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{ng_addr[1]}", "--table=-1",
           f"--port-min={ctx['rtpengine_ports'][0]}", f"--port-max={ctx['rtpengine_ports'][1]}",
           f"--num-threads={ctx['rtpengine_threads']}", "--timeout=600", "--delete-delay=0",
           "--dtls-passive", f"--pidfile={os.path.join(d, tag + '.pid')}"]
    with open(logf, "w") as out:
        p = media.start(cmd, stdout=out, stderr=subprocess.STDOUT)
    res = dict(system="rtpengine", streams=streams, calls=calls, seconds=seconds,
               threads=ctx["rtpengine_threads"])
    ng = media.Ng(ng_addr)
    gen = None
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
        gen = Gen(ctx, calls, seconds, tag)
        rss0 = media.rss_mb(p.pid)
        t0, answers, errors = time.time(), [], collections.Counter()
        example = None
        for i, o in enumerate(gen.offers):
            cid = f"sb-{i}"
            off = ng.cmd(dict(NG_OFFER_FLAGS, command="offer", **{"call-id": cid, "from-tag": f"a{i}",
                                                                   "sdp": secure_offer(o, i)}))
            if off.get("result") != b"ok":
                errors[str(off.get("error-reason"))[:100]] += 1
                continue
            ans = ng.cmd(dict(NG_ANSWER_FLAGS, command="answer",
                              **{"call-id": cid, "from-tag": f"a{i}", "to-tag": f"b{i}",
                                 "sdp": plain_answer(o, i)}))
            if ans.get("result") != b"ok":
                errors[str(ans.get("error-reason"))[:100]] += 1
                continue
            pb, pb_addr = media.sdp_media(off["sdp"])
            if example is None:
                example = dict(offer_to_b=off["sdp"].decode(errors="replace")[:700],
                               answer_to_a=ans["sdp"].decode(errors="replace")[:1200])
            params, why = secure_answer_params(ans["sdp"])
            if params is None or pb_addr != "127.0.0.1":
                errors[why or f"B side address {pb_addr}"] += 1
                continue
            if not params.pop("rtcp_mux"):
                errors["answer without a=rtcp-mux (sent anyway)"] += 1
            answers.append(dict(call=i, relay_b=f"127.0.0.1:{pb}", **params))
        setup_s = time.time() - t0
        res["setup"] = dict(answered=len(answers), errors=dict(errors), seconds=round(setup_s, 1),
                            ng_ms_per_call=round(1000 * setup_s / max(1, calls), 3))
        if ctx.get("show_sdp") or not answers:
            res["sdp_example"] = example
        res["rss_mb_idle"], res["rss_mb_after_setup"] = rss0, media.rss_mb(p.pid)
        log(f"  [rtpengine] {len(answers)} of {calls} calls set up; ICE+DTLS, then {seconds} s of media")
        gen.go(answers)
        g = gen.finish(p.pid)
        judge(res, g, direct, seconds, calls, len(answers))
        res["rss_mb"] = media.rss_mb(p.pid)
        for i in range(calls):
            try:
                ng.cmd({"command": "delete", "call-id": f"sb-{i}", "from-tag": f"a{i}"}, timeout=1, tries=1)
            except RuntimeError:
                pass
    finally:
        if gen:
            gen.abort()
        ng.close()
        media.stop_proc(p, grace=10)
    if res.get("clean") is not True:
        with open(logf, errors="replace") as f:
            res["rtpengine_log_tail"] = [l.rstrip()[:300] for l in f.readlines()[-4:]]
    return res


# ---------------------------------------------------------------------------------------
def build(what, args, timeout=1800):
    b = subprocess.run(["cargo", "build", "--release", "--quiet"] + args, cwd=REPO,
                       capture_output=True, text=True, timeout=timeout)
    if b.returncode != 0:
        err = [l for l in b.stderr.splitlines() if l.startswith("error")]
        log(f"  cargo build {what} failed: " + "\n  ".join(err[:3]))
    return b.returncode == 0


def step_summary(r):
    if r is None or "error" in r:
        return r
    keep = ("clean", "not_clean", "handshakes_ok", "loss_pct", "added_us_p50", "added_us_p99",
            "lat_us_p99", "relay_cpu_pct", "gen_cpu_pct", "others_cpu_pct")
    return {k: r[k] for k in keep if k in r}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"one step: {QUICK_STREAMS} streams for {QUICK_SECONDS} s")
    ap.add_argument("--streams", help=f"comma-separated stream counts (default {LADDER}); 2 per call")
    ap.add_argument("--seconds", type=int, help="seconds of media per system and step (default 10; max 15)")
    ap.add_argument("--setup-rate", type=int, default=200, help="our SIP call setup rate, calls/s (default 200)")
    ap.add_argument("--rtpengine-threads", type=int, default=2, help="rtpengine --num-threads (default 2)")
    ap.add_argument("--rtpengine-log-level", type=int, default=3)
    ap.add_argument("--media-threads", type=int, default=0, help="our [media] threads (default 0 = one per core)")
    ap.add_argument("--gen-threads", type=int, default=2, help="srtp_load threads (default 2)")
    ap.add_argument("--connect-timeout", type=int, default=20, help="ICE+DTLS bound per step, s (default 20)")
    ap.add_argument("--budget", type=int, default=900, help="no new step after this many seconds (default 900)")
    ap.add_argument("--keep-going", action="store_true", help="run every step even after a system's unclean one")
    ap.add_argument("--no-direct", action="store_true", help="skip the direct baseline (no added_us_* figures)")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--skip-rtpengine", action="store_true")
    ap.add_argument("--show-sdp", action="store_true", help="keep one rtpengine offer/answer SDP in the step JSON")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--bin", help="switch binary (implies --no-build for it)")
    ap.add_argument("--no-quiet-wait", action="store_true")
    ap.add_argument("--json-out", help="also write every step's details to this file")
    a = ap.parse_args()

    seconds = a.seconds or (QUICK_SECONDS if a.quick else 10)
    if not 1 <= seconds <= 15:
        raise SystemExit("--seconds must be 1..15")
    ladder = ([int(x) for x in a.streams.split(",")] if a.streams
              else [QUICK_STREAMS] if a.quick else LADDER)
    if any(s < 2 or s % 2 or s > 8000 for s in ladder):
        raise SystemExit("--streams: even counts from 2 to 8000 (2 streams per call)")
    t_start = time.time()
    if not a.skip_rtpengine and not shutil.which("rtpengine"):
        raise SystemExit("rtpengine not found: apt-get install -y rtpengine-daemon")
    # 2 sockets per call in the generator, 2-4 per call in the relays.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 8 * max(ladder) + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if a.bin:
        media.BIN = os.path.abspath(a.bin)
    notes = []
    if not a.no_build:
        log("cargo build --release --example srtp_load" + ("" if a.skip_ours or a.bin else " --bin switchboard"))
        if not build("srtp_load", ["--example", "srtp_load"]) and not os.path.exists(GEN):
            raise SystemExit("cannot build examples/srtp_load")
        if not (a.skip_ours or a.bin) and not build("switchboard", ["--bin", "switchboard"]):
            if not os.path.exists(media.BIN):
                raise SystemExit("cargo build failed and there is no target/release/switchboard")
            notes.append("cargo build failed; used the existing switch binary built " + time.strftime(
                "%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(media.BIN))))
    run_dir = tempfile.mkdtemp(prefix="swb-srtpbench-")
    rtp_ports, rtpe_ports, _ = media.port_ranges(max(ladder) // 2)
    ctx = dict(run_dir=run_dir, gen=GEN, gen_threads=a.gen_threads, connect_timeout=a.connect_timeout,
               rtp_ports=rtp_ports, rtpengine_ports=rtpe_ports, rtpengine_threads=a.rtpengine_threads,
               rtpengine_log_level=a.rtpengine_log_level, media_threads=a.media_threads,
               setup_rate=a.setup_rate, show_sdp=a.show_sdp)
    report = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), ladder=ladder, seconds=seconds, cores=os.cpu_count(),
                  criterion=f"loss <= {CLEAN_LOSS_PCT}% and generator sent >= {MIN_SENT_SHARE:.0%} of offer and "
                            "every call set up (answer + DTLS handshake)",
                  commit=subprocess.run(["git", "log", "--oneline", "-1"], cwd=REPO, capture_output=True,
                                        text=True).stdout.strip(), steps=[])
    live = {n for n, skip in (("ours", a.skip_ours), ("rtpengine", a.skip_rtpengine)) if not skip}
    results = {n: [] for n in live}
    quiet = media.Quiet(0 if a.no_quiet_wait else 10, 0 if a.no_quiet_wait else 60)
    budget_cut = False
    try:
        for streams in ladder:
            if not live:
                break
            calls = streams // 2
            cost = 3 * (seconds + 5 + calls / 100) + calls / a.setup_rate + 20
            if time.time() - t_start + cost > a.budget:
                log(f"time budget reached: step {streams} not run")
                budget_cut = True
                break
            step = dict(streams=streams, calls=calls, seconds=seconds, busy_before_pct=quiet.wait(),
                        rustc_running=bool(subprocess.run(["pgrep", "-x", "rustc"], capture_output=True).stdout))
            direct = None
            if not a.no_direct:
                log(f"[direct] {streams} streams x {seconds} s")
                try:
                    direct = direct_step(ctx, calls, seconds)
                except Exception as e:
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
                if r.get("clean") is not True and not a.keep_going:
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

        top_o, top_r = top("ours"), top("rtpengine")
        summary = dict(
            ours_clean_streams=top_o, rtpengine_clean_streams=top_r,
            ratio=round(top_o / top_r, 2) if top_o is not None and top_r else None,
            ours_added_us_p50=at("ours", top_o, "added_us_p50") if top_o else None,
            ours_added_us_p99=at("ours", top_o, "added_us_p99") if top_o else None,
            rtpengine_added_us_p50=at("rtpengine", top_r, "added_us_p50") if top_r else None,
            rtpengine_added_us_p99=at("rtpengine", top_r, "added_us_p99") if top_r else None,
            ours_p99_under_1ms=(at("ours", top_o, "added_us_p99") or 10 ** 9) < OUR_P99_TARGET_US if top_o else None,
            ours_cpu_pct=at("ours", top_o, "relay_cpu_pct") if top_o else None,
            rtpengine_cpu_pct=at("rtpengine", top_r, "relay_cpu_pct") if top_r else None,
            ours_top_step_failed=bool(results.get("ours")) and results["ours"][-1].get("clean") is not True,
            rtpengine_top_step_failed=bool(results.get("rtpengine")) and results["rtpengine"][-1].get("clean") is not True,
            criterion=report["criterion"], seconds_per_step=seconds, budget_cut=budget_cut,
            seconds=round(time.time() - t_start))
        if notes:
            summary["notes"] = notes
        report["summary"] = summary
        if a.json_out:
            with open(a.json_out, "w") as f:
                json.dump(report, f, indent=1)
        print(compact(summary), flush=True)
    finally:
        media.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
