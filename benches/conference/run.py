#!/usr/bin/env python3
"""Conference mixing load: participants in 3-party rooms, and one large room, mixed by a real switch.

    python3 benches/conference/run.py [--quick] [--participants 300,1500,3000] [--big 100]
                                      [--seconds 10]

See README.md beside this file. In short, each step of P participants:
  1. starts a fresh switch whose config has one number per room; each number's inline
     TwiML is <Dial><Conference beep="false">room-N</Conference></Dial>;
  2. examples/conference_load.rs binds P RTP sockets; this script places P carrier calls over
     SIP (benches/media/run.py's SipBench: INVITE with the participant's port, 200, ACK),
     participant i dialling room i / ROOM_SIZE;
  3. every participant sends its tone (PCMU, 20 ms; in the large room only the first 3 talk,
     the others send silence) for WARMUP + SECONDS; the generator
     measures what it hears in the last SECONDS: frames that never came, sequence gaps,
     arrival against each stream's 20 ms grid, and (a sample of rooms) that each hears the
     others' tones and never its own;
  4. reads the switch's /metrics before and after that window: mixer ticks, participant-
     frames mixed, ticks skipped, and the tick-lateness histogram (when each tick's last frame
     left against when it was due); and the switch's CPU (/proc) over the window and its RSS
     before and after the calls were set up;
  5. BYE for every call.
A step is clean when every call was answered, the generator sent >= 99 % of its offered
frames, frames short <= 0.1 %, no tick was skipped, and every checked participant heard right.
No conferencing server is packaged for this machine: the comparison is with the kernel's own
limit, `cargo bench --bench mixer` (decode + mix + encode per participant-frame), as
achieved participants / (cores x 20 ms / kernel cost).
Everything runs on 127.0.0.1; every process started here is stopped by its PID; each step is
bounded in count and time. Python standard library only.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "benches", "media"))
import run as media  # noqa: E402  (benches/media/run.py: SIP, /proc, process handling)

GEN = os.path.join(REPO, "target", "release", "examples", "conference_load")
LADDER = [300, 1500, 3000]
QUICK_PARTICIPANTS, QUICK_SECONDS = 60, 4
ROOM_SIZE = 3
# In the large room a few talk and the rest listen (as in a town hall); each listener
# must hear every talker, each talker the others and never itself.
BIG_ROOM_TALKERS = 3
WARMUP = 3
CLEAN_SHORT_PCT = 0.1
MIN_SENT_SHARE = 0.99
TICK_P99_TARGET_MS = 2.0
ACCOUNT, APP_PREFIX = media.ACCOUNT, "AP" + "0" * 22
log, compact = media.log, media.compact


def number_of(room):
    return f"+1555020{room:04d}"


def config_text(rooms, rtp_ports, media_threads):
    text = f"""# benches/conference/run.py: a switch for conference load, on loopback only.
[server]
sip_listen = ["127.0.0.1:0"]
http_listen = "127.0.0.1:0"
realm = "{media.REALM}"
rtp_ports = "{rtp_ports}"

[[accounts]]
sid = "{ACCOUNT}"
auth_token = "conference-bench-auth-token"

[[trunks]]
name = "carrier"
account = "{ACCOUNT}"
inbound_cidrs = ["127.0.0.1/32"]

[calls]
keep_finished = 1000
max_concurrent = 100000

# Every call is the bench account's: past its default cap (80 % of the port pairs) the last
# ones would get 503.
[limits]
account_max_calls = 1000000

[media]
threads = {media_threads}
timeout_secs = 600
"""
    for r in range(rooms):
        sid = f"{APP_PREFIX}{r:010d}"
        twiml = f'<Response><Dial><Conference beep="false">room-{r}</Conference></Dial></Response>'
        text += (f'\n[[applications]]\nsid = "{sid}"\naccount = "{ACCOUNT}"\ntwiml = \'{twiml}\'\n'
                 f'\n[[numbers]]\nnumber = "{number_of(r)}"\napplication = "{sid}"\n')
    return text


def scrape(http):
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {"lateness_buckets": [], "duration_buckets": []}
    for line in text.splitlines():
        m = re.match(r'^conference_mix_tick_(lateness|duration)_seconds_bucket\{le="([^"]+)"\} (\d+)$', line)
        if m:
            le = float("inf") if m.group(2) == "+Inf" else float(m.group(2))
            out[f"{m.group(1)}_buckets"].append((le, int(m.group(3))))
            continue
        m = re.match(r"^(conference_\w+|rtp_port_pairs_free) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def histogram_between(before, after, key):
    """The window's histogram (`key`: lateness or duration of the ticks): count per bucket,
    and the bound under which 50 / 99 / 99.9 % of its ticks fell."""
    b0 = dict(before[f"{key}_buckets"])
    hist = [(le, n - b0.get(le, 0)) for le, n in after[f"{key}_buckets"]]
    total = hist[-1][1] if hist else 0
    res = dict(ticks=total)
    for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
        bound = next((le for le, n in hist if total and n >= q * total), None)
        res[f"{name}_ms_le"] = None if bound is None else (
            "inf" if bound == float("inf") else round(bound * 1000, 2))
    res["buckets_ms"] = {("inf" if le == float("inf") else str(round(le * 1000, 2))): n for le, n in hist}
    return res


class Gen:
    def __init__(self, run_dir, participants, room, seconds, threads, sample, tag, cpus=None,
                 talkers=None):
        self.errf = os.path.join(run_dir, f"{tag}.gen.err")
        cmd = (["taskset", "-c", cpus] if cpus else []) + [GEN, str(participants), str(room), str(seconds), "--warmup", str(WARMUP),
               "--threads", str(threads), "--sample", str(sample)]
        if talkers:
            cmd += ["--talkers", str(talkers)]
        with open(self.errf, "w") as err:
            self.p = media.start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self.ports = {}
        deadline = time.time() + 30 + participants / 200
        while True:
            o = self.line(deadline)
            if o is None:
                raise RuntimeError(f"conference_load: no phase-1 output ({self.err()})")
            if "ready" in o:
                break
            self.ports[o["i"]] = o["port"]

    def err(self):
        with open(self.errf, errors="replace") as f:
            return f.read().strip()[-400:]

    def line(self, deadline):
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


def step(ctx, participants, room, seconds):
    rooms = (participants + room - 1) // room
    d, tag = ctx["run_dir"], f"p{participants}-r{room}"
    cfg = os.path.join(d, f"{tag}.toml")
    with open(cfg, "w") as f:
        f.write(config_text(rooms, ctx["rtp_ports"], ctx["media_threads"]))
    chk = subprocess.run([media.BIN, "check", "-c", cfg], capture_output=True, text=True, timeout=60)
    if chk.returncode != 0:
        raise RuntimeError(f"switchboard check: {(chk.stderr or chk.stdout).strip()[:300]}")
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "warn")
    out_p, err_p = os.path.join(d, f"{tag}-switch.out"), os.path.join(d, f"{tag}-switch.err")
    pin = ctx["pin"]
    with open(out_p, "w") as out, open(err_p, "w") as err:
        sw = media.start((["taskset", "-c", pin[0]] if pin else []) + [media.BIN, "run", "-c", cfg],
                         cwd=d, env=env, stdout=out, stderr=err)
    res = dict(participants=participants, room_size=room, rooms=rooms, seconds=seconds)
    sip = gen = None
    try:
        media.wait_line(out_p, r"^ready$", sw, 30, "switchboard")
        host, port = media.wait_line(out_p, r"^listening sip/udp (\S+):(\d+)$", sw, 1,
                                     "switchboard").groups()
        http = media.wait_line(out_p, r"^listening http (\S+)$", sw, 1, "switchboard").group(1)
        gen = Gen(d, participants, room, seconds, ctx["gen_threads"], ctx["sample"], tag,
                  pin[1] if pin else None, talkers=BIG_ROOM_TALKERS if room > ROOM_SIZE else None)

        def sdp(i):
            return ("v=0\r\n"
                    f"o=participant {i + 1} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    f"m=audio {gen.ports[i]} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")

        sip = media.SipBench((host, int(port)), None, carrier_sdp_fn=sdp,
                             number_fn=lambda i: number_of(i // room))
        rss0, cpu0 = media.rss_mb(sw.pid), media.proc_cpu(sw.pid)
        setup_s = sip.setup(participants, ctx["setup_rate"], timeout=20)
        answered = {c.i: c.pa for c in sip.calls if c.state == "answered" and c.pa}
        res["setup"] = dict(answered=len(answered), seconds=round(setup_s, 1),
                            failed=sum(1 for c in sip.calls if c.state == "failed"),
                            switch_cpu_s=round(media.proc_cpu(sw.pid) - cpu0, 2))
        # Let the last joins land on their relay threads.
        t_settle = time.time() + 2
        while time.time() < t_settle:
            sip.pump(0.05)
        res["rss_mb_idle"], res["rss_mb_joined"] = rss0, media.rss_mb(sw.pid)
        if rss0 and res["rss_mb_joined"] and answered:
            res["rss_kb_per_participant"] = round(1024 * (res["rss_mb_joined"] - rss0) / len(answered), 1)
        gen.go(answered)
        # The generator marks the measured window; keep answering SIP meanwhile.
        marks, m0, m1, cpu_a, cpu_b = {}, None, None, None, None
        deadline = time.time() + WARMUP + seconds + 60
        result = None
        import select
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
                m0, cpu_a, marks["t0"] = scrape(http), media.proc_cpu(sw.pid), time.time()
                marks["busy0"], marks["gen0"] = media.machine_busy_s(), media.proc_cpu(gen.p.pid)
            elif o.get("media") == "end":
                m1, cpu_b, marks["t1"] = scrape(http), media.proc_cpu(sw.pid), time.time()
                marks["busy1"], marks["gen1"] = media.machine_busy_s(), media.proc_cpu(gen.p.pid)
            elif "received" in o:
                result = o
                break
        if result is None:
            raise RuntimeError(f"conference_load gave no result ({gen.err()})")
        res["gen"] = result
        if m0 and m1:
            wall = marks["t1"] - marks["t0"]
            frames = m1.get("conference_participant_frames_total", 0) - m0.get(
                "conference_participant_frames_total", 0)
            res["switch_cpu_pct"] = round(100 * (cpu_b - cpu_a) / wall, 1)
            res["machine_busy_pct"] = round(100 * (marks["busy1"] - marks["busy0"]) / wall, 1)
            res["participant_frames_per_s"] = round(frames / wall)
            res["cpu_us_per_participant_frame"] = round(1e6 * (cpu_b - cpu_a) / frames, 2) if frames else None
            res["ticks_skipped"] = int(m1.get("conference_mix_ticks_skipped_total", 0)
                                       - m0.get("conference_mix_ticks_skipped_total", 0))
            res["tick_lateness"] = histogram_between(m0, m1, "lateness")
            res["tick_duration"] = histogram_between(m0, m1, "duration")
            res["gen_cpu_pct"] = round(100 * (marks["gen1"] - marks["gen0"]) / wall, 1)
        g = result
        offered = g["run"] * (WARMUP + seconds) * 50
        sent_ok = offered and g["sent"] >= MIN_SENT_SHARE * offered
        content_ok = g["content"]["checked"] > 0 and g["content"]["ok"] == g["content"]["checked"]
        res["clean"] = bool(len(answered) == participants and sent_ok
                            and g["short_pct"] <= CLEAN_SHORT_PCT and res.get("ticks_skipped") == 0
                            and content_ok)
        p99 = res.get("tick_lateness", {}).get("p99_ms_le")
        res["tick_p99_under_target"] = isinstance(p99, float) and p99 <= TICK_P99_TARGET_MS
        if sw.poll() is not None:
            res["switch_exited"] = sw.returncode
        sip.hangup(max(ctx["setup_rate"], 500), timeout=10)
    finally:
        if gen:
            media.stop_proc(gen.p)
        if sip:
            sip.close()
        media.stop_proc(sw)
    return res


def kernel_cost_us():
    """The mixer kernel's cost per participant-frame (decode + mix + encode), µs, for 3 and
    100-party rooms: `cargo bench --bench mixer -- --kernel`, run now on this machine."""
    b = subprocess.run(["cargo", "bench", "--quiet", "--bench", "mixer", "--", "--kernel"], cwd=REPO,
                       capture_output=True, text=True, timeout=1800)
    costs = {}
    for line in b.stdout.splitlines():
        m = re.match(r"^\s*(\d+)\s+(\d+(?:\.\d+)?)\s+\d+", line)
        if m:
            costs[int(m.group(1))] = float(m.group(2)) / 1000
    if 3 not in costs:
        raise SystemExit(f"cargo bench --bench mixer -- --kernel gave no figure:\n{b.stdout}{b.stderr[-800:]}")
    return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"one step: {QUICK_PARTICIPANTS} participants for {QUICK_SECONDS} s, no big room")
    ap.add_argument("--participants", help=f"comma-separated counts in 3-party rooms (default {LADDER})")
    ap.add_argument("--big", type=int, default=100, help="size of the one large room (0: none; default 100)")
    ap.add_argument("--seconds", type=int, help="measured seconds per step (default 10; max 60)")
    ap.add_argument("--setup-rate", type=int, default=300, help="call setup rate, calls/s (default 300)")
    ap.add_argument("--media-threads", type=int, default=0, help="our [media] threads (default 0 = one per core)")
    ap.add_argument("--gen-threads", type=int, default=1, help="generator threads (default 1)")
    ap.add_argument("--sample", type=int, default=10, help="check the audio of every Nth room (default 10)")
    ap.add_argument("--pin", metavar="SWITCH_CPUS:GEN_CPUS",
                    help="taskset the switch and the generator apart, e.g. 1:0 (with --media-threads 1: "
                         "what one core of the switch mixes while the generator has the other)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json-out", help="also write the report to this file")
    a = ap.parse_args()
    seconds = a.seconds or (QUICK_SECONDS if a.quick else 10)
    if not 1 <= seconds <= 60:
        raise SystemExit("--seconds must be 1..60")
    ladder = ([int(x) for x in a.participants.split(",")] if a.participants
              else [QUICK_PARTICIPANTS] if a.quick else LADDER)
    if any(p < 3 or p > 6000 for p in ladder):
        raise SystemExit("--participants: 3 to 6000")
    if not a.no_build:
        log("cargo build --release --bin switchboard --example conference_load")
        b = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "switchboard",
                            "--example", "conference_load"], cwd=REPO, capture_output=True,
                           text=True, timeout=1800)
        if b.returncode != 0:
            raise SystemExit("cargo build failed:\n" + b.stderr[-2000:])
    run_dir = tempfile.mkdtemp(prefix="swb-confbench-")
    # Each participant's call holds one RTP port pair; port_ranges sizes for 2 legs a call.
    rtp_ports, _, _ = media.port_ranges(max(ladder + [a.big]))
    pin = a.pin.split(":") if a.pin else None
    if pin and len(pin) != 2:
        raise SystemExit("--pin SWITCH_CPUS:GEN_CPUS, e.g. 1:0")
    ctx = dict(run_dir=run_dir, pin=pin, rtp_ports=rtp_ports, media_threads=a.media_threads,
               setup_rate=a.setup_rate, gen_threads=a.gen_threads, sample=a.sample)
    log("cargo bench --bench mixer -- --kernel")
    costs = kernel_cost_us()
    kernel = costs[3]
    cores = os.cpu_count() or 1
    limit = cores * 20_000 / kernel
    report = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), cores=cores, seconds=seconds, pin=a.pin,
                  media_threads=a.media_threads,
                  commit=subprocess.run(["git", "log", "--oneline", "-1"], cwd=REPO,
                                        capture_output=True, text=True).stdout.strip(),
                  kernel_us_per_participant_frame={str(n): round(c, 3) for n, c in costs.items()},
                  kernel_limit_participants=round(limit), steps=[])
    runs = [(p, ROOM_SIZE) for p in ladder]
    if a.big and not a.quick:
        runs.append((a.big, a.big))
    best = 0
    for participants, room in runs:
        log(f"[{participants} participants in rooms of {room}] {seconds} s")
        try:
            r = step(ctx, participants, room, seconds)
        except Exception as e:
            r = dict(participants=participants, room_size=room, clean=False, error=str(e)[:800])
        summary = {k: r.get(k) for k in ("clean", "switch_cpu_pct", "gen_cpu_pct", "machine_busy_pct",
                                         "cpu_us_per_participant_frame", "rss_kb_per_participant",
                                         "ticks_skipped", "error") if k in r}
        if "tick_lateness" in r:
            summary["tick_late_p99_ms_le"] = r["tick_lateness"]["p99_ms_le"]
            summary["tick_took_p99_ms_le"] = r["tick_duration"]["p99_ms_le"]
        if "gen" in r:
            g = r["gen"]
            summary.update(short_pct=g["short_pct"], seq_lost=g["seq_lost"],
                           late_us_p99=g["late_us_p99"],
                           content=f'{g["content"]["ok"]}/{g["content"]["checked"]}')
        log("  " + compact(summary))
        report["steps"].append(r)
        print(compact(r), flush=True)
        if room == ROOM_SIZE and r.get("clean"):
            best = max(best, participants)
    report["best_clean_3party"] = best
    report["achieved_over_kernel_limit"] = round(best / limit, 3) if limit else None
    final = {k: report[k] for k in ("date", "cores", "kernel_us_per_participant_frame",
                                    "kernel_limit_participants", "best_clean_3party",
                                    "achieved_over_kernel_limit")}
    print(compact(final), flush=True)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
