#!/usr/bin/env python3
"""Media streams load: concurrent bidirectional streams (<Connect><Stream>) to an echo agent.

    python3 benches/streams/run.py [--quick] [--streams 100,500,1000] [--seconds 10]

See README.md beside this file. In short, each step of N streams:
  1. examples/stream_load.rs starts an echo agent (a WebSocket server written from Twilio's
     published message schema: every `media` payload goes back at once) and binds the
     callers' RTP socket;
  2. a fresh switch runs one number whose inline TwiML is
     <Connect><Stream url="ws://127.0.0.1:P/agent"/></Connect>; this script places N carrier
     calls over SIP (benches/media/run.py's SipBench);
  3. every caller sends 20 ms PCMU frames for WARMUP + SECONDS; each frame is timed from its
     send to its echo's arrival back at the caller (caller -> switch -> app -> switch ->
     caller): that is the round trip the stream adds, since without it the caller would
     hear nothing; frames sent in the last SECONDS that never come back are lost;
  4. the switch's CPU (/proc) over the window and its RSS before and after the calls;
  5. BYE for every call.
A step is clean when every call was answered, every stream connected, and no frame was lost.
The aim (issue 17): 1,000 streams on 2 cores with p99 round trip < 40 ms. No other switch
here speaks Twilio Media Streams, so the figure is against that aim, not a peer.
Everything runs on 127.0.0.1; every process started here is stopped by its PID; each step is
bounded in count and time. Python standard library only.
"""
import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "benches", "media"))
import run as media  # noqa: E402  (benches/media/run.py: SIP, /proc, process handling)

GEN = os.path.join(REPO, "target", "release", "examples", "stream_load")
LADDER = [100, 500, 1000]
QUICK_STREAMS, QUICK_SECONDS = 50, 4
WARMUP = 3
RTT_P99_AIM_MS = 40.0
ACCOUNT = media.ACCOUNT
NUMBER = "+15550300001"
APP = "AP" + "0" * 31 + "1"
log, compact = media.log, media.compact


def config_text(agent_url, rtp_ports, media_threads):
    twiml = f'<Response><Connect><Stream url="{agent_url}"/></Connect></Response>'
    return f"""# benches/streams/run.py: a switch for media stream load, on loopback only.
[server]
sip_listen = ["127.0.0.1:0"]
http_listen = "127.0.0.1:0"
realm = "{media.REALM}"
rtp_ports = "{rtp_ports}"

[server.limits]
# One carrier address places every call: no per-source limit in a load test.
requests_per_second_per_source = 0
trunk_requests_per_second = 0

[[accounts]]
sid = "{ACCOUNT}"
auth_token = "streams-bench-auth-token"

[[trunks]]
name = "carrier"
account = "{ACCOUNT}"
inbound_cidrs = ["127.0.0.1/32"]

[calls]
keep_finished = 1000
max_concurrent = 100000

[limits]
account_max_calls = 1000000

[media]
threads = {media_threads}
timeout_secs = 600

[webhooks]
# The echo agent listens on loopback.
allow_private_networks = ["127.0.0.0/8"]

[[applications]]
sid = "{APP}"
account = "{ACCOUNT}"
twiml = '{twiml}'

[[numbers]]
number = "{NUMBER}"
application = "{APP}"
"""


class Gen:
    def __init__(self, run_dir, streams, seconds, tag):
        self.errf = os.path.join(run_dir, f"{tag}.gen.err")
        cmd = [GEN, str(streams), str(seconds), "--warmup", str(WARMUP)]
        with open(self.errf, "w") as err:
            self.p = media.start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self.agent = self.port = None
        deadline = time.time() + 30
        while True:
            o = self.line(deadline)
            if o is None:
                raise RuntimeError(f"stream_load: no phase-1 output ({self.err()})")
            if "agent" in o:
                self.agent = o["agent"]
            if "port" in o:
                self.port = o["port"]
            if "ready" in o:
                break

    def err(self):
        with open(self.errf, errors="replace") as f:
            return f.read().strip()[-400:]

    def line(self, deadline):
        # Blocking reads: the generator prints its phase-1 lines at once (a select on the
        # buffered pipe would miss those already read into the buffer).
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                return None
            try:
                return json.loads(line)
            except ValueError:
                continue
        return None

    def go(self, relays):
        for i, port in relays.items():
            self.p.stdin.write(f'{{"i":{i},"relay":{port}}}\n'.encode())
        self.p.stdin.write(b'{"go":true}\n')
        self.p.stdin.flush()


def step(ctx, streams, seconds):
    d, tag = ctx["run_dir"], f"s{streams}"
    gen = sip = sw = None
    res = dict(streams=streams, seconds=seconds)
    try:
        gen = Gen(d, streams, seconds, tag)
        cfg = os.path.join(d, f"{tag}.toml")
        with open(cfg, "w") as f:
            f.write(config_text(gen.agent, ctx["rtp_ports"], ctx["media_threads"]))
        chk = subprocess.run([media.BIN, "check", "-c", cfg], capture_output=True, text=True, timeout=60)
        if chk.returncode != 0:
            raise RuntimeError(f"switchboard check: {(chk.stderr or chk.stdout).strip()[:300]}")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        out_p, err_p = os.path.join(d, f"{tag}-switch.out"), os.path.join(d, f"{tag}-switch.err")
        with open(out_p, "w") as out, open(err_p, "w") as err:
            sw = media.start([media.BIN, "run", "-c", cfg], cwd=d, env=env, stdout=out, stderr=err)
        media.wait_line(out_p, r"^ready$", sw, 30, "switchboard")
        host, port = media.wait_line(out_p, r"^listening sip/udp (\S+):(\d+)$", sw, 1,
                                     "switchboard").groups()

        def sdp(i):
            return ("v=0\r\n"
                    f"o=caller {i + 1} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    f"m=audio {gen.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")

        sip = media.SipBench((host, int(port)), None, carrier_sdp_fn=sdp, number_fn=lambda i: NUMBER)
        rss0 = media.rss_mb(sw.pid)
        setup_s = sip.setup(streams, ctx["setup_rate"], timeout=30)
        answered = {c.i: c.pa for c in sip.calls if c.state == "answered" and c.pa}
        res["setup"] = dict(answered=len(answered), seconds=round(setup_s, 1),
                            failed=sum(1 for c in sip.calls if c.state == "failed"))
        # Let the streams connect.
        t_settle = time.time() + 2
        while time.time() < t_settle:
            sip.pump(0.05)
        res["rss_mb_idle"], res["rss_mb_streaming"] = rss0, media.rss_mb(sw.pid)
        if rss0 and res["rss_mb_streaming"] and answered:
            res["rss_kb_per_stream"] = round(1024 * (res["rss_mb_streaming"] - rss0) / len(answered), 1)
        gen.go(answered)
        marks, result = {}, None
        deadline = time.time() + WARMUP + seconds + 30
        while time.time() < deadline:
            sip.pump(0.0)
            r, _, _ = select.select([gen.p.stdout], [], [], 0.05)
            if not r:
                continue
            line = gen.p.stdout.readline()
            if not line:
                break
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if o.get("media") == "start":
                marks.update(t0=time.time(), cpu0=media.proc_cpu(sw.pid), gen0=media.proc_cpu(gen.p.pid),
                             busy0=media.machine_busy_s())
            elif o.get("media") == "end":
                marks.update(t1=time.time(), cpu1=media.proc_cpu(sw.pid), gen1=media.proc_cpu(gen.p.pid),
                             busy1=media.machine_busy_s())
            elif "echoed" in o:
                result = o
                break
        if result is None:
            raise RuntimeError(f"stream_load gave no result ({gen.err()})")
        res["gen"] = result
        if "t1" in marks:
            wall = marks["t1"] - marks["t0"]
            res["switch_cpu_pct"] = round(100 * (marks["cpu1"] - marks["cpu0"]) / wall, 1)
            res["gen_and_agent_cpu_pct"] = round(100 * (marks["gen1"] - marks["gen0"]) / wall, 1)
            res["machine_busy_pct"] = round(100 * (marks["busy1"] - marks["busy0"]) / wall, 1)
        g = result
        res["clean"] = bool(len(answered) == streams and g["streams"] == streams and g["sent"] > 0
                            and g["lost"] == 0)
        res["rtt_p99_under_aim"] = g["rtt_ms_p99"] < RTT_P99_AIM_MS
        if sw.poll() is not None:
            res["switch_exited"] = sw.returncode
        sip.hangup(max(ctx["setup_rate"], 500), timeout=10)
    finally:
        if gen:
            media.stop_proc(gen.p)
        if sip:
            sip.close()
        if sw:
            media.stop_proc(sw)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"one step: {QUICK_STREAMS} streams for {QUICK_SECONDS} s")
    ap.add_argument("--streams", help=f"comma-separated counts (default {LADDER})")
    ap.add_argument("--seconds", type=int, help="measured seconds per step (default 10; max 60)")
    ap.add_argument("--setup-rate", type=int, default=200, help="call setup rate, calls/s (default 200)")
    ap.add_argument("--media-threads", type=int, default=0, help="our [media] threads (default 0 = one per core)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json-out", help="also write the report to this file")
    a = ap.parse_args()
    seconds = a.seconds or (QUICK_SECONDS if a.quick else 10)
    if not 1 <= seconds <= 60:
        raise SystemExit("--seconds must be 1..60")
    ladder = ([int(x) for x in a.streams.split(",")] if a.streams
              else [QUICK_STREAMS] if a.quick else LADDER)
    if any(n < 1 or n > 3000 for n in ladder):
        raise SystemExit("--streams: 1 to 3000")
    if not a.no_build:
        log("cargo build --release --bin switchboard --example stream_load")
        b = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "switchboard",
                            "--example", "stream_load"], cwd=REPO, capture_output=True, text=True,
                           timeout=1800)
        if b.returncode != 0:
            raise SystemExit("cargo build failed:\n" + b.stderr[-2000:])
    run_dir = tempfile.mkdtemp(prefix="swb-streambench-")
    rtp_ports, _, _ = media.port_ranges(max(ladder))
    ctx = dict(run_dir=run_dir, rtp_ports=rtp_ports, media_threads=a.media_threads, setup_rate=a.setup_rate)
    report = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), cores=os.cpu_count(), seconds=seconds,
                  commit=subprocess.run(["git", "log", "--oneline", "-1"], cwd=REPO,
                                        capture_output=True, text=True).stdout.strip(),
                  rtt_p99_aim_ms=RTT_P99_AIM_MS, steps=[])
    best = 0
    for n in ladder:
        log(f"[{n} streams] {seconds} s")
        try:
            r = step(ctx, n, seconds)
        except Exception as e:
            r = dict(streams=n, clean=False, error=str(e)[:800])
        summary = {k: r.get(k) for k in ("clean", "switch_cpu_pct", "gen_and_agent_cpu_pct",
                                         "machine_busy_pct", "rss_kb_per_stream", "error") if k in r}
        if "gen" in r:
            g = r["gen"]
            summary.update({k: g[k] for k in ("streams", "sent", "lost", "rtt_ms_p50", "rtt_ms_p99",
                                              "rtt_ms_p999", "rtt_ms_max")})
        log("  " + compact(summary))
        report["steps"].append(r)
        print(compact(r), flush=True)
        if r.get("clean") and r.get("rtt_p99_under_aim"):
            best = max(best, n)
    report["most_clean_streams_under_aim"] = best
    print(compact({k: report[k] for k in ("date", "cores", "rtt_p99_aim_ms", "most_clean_streams_under_aim")}),
          flush=True)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
