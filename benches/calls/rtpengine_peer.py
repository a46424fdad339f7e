"""The Kamailio + rtpengine peer for run.py: the like-for-like peer of a switch that
anchors media. Kamailio (kamailio-rtpengine.cfg beside this file) proxies each call as the
peers' bench.py does, and asks rtpengine over the NG protocol to anchor its media:
rtpengine_offer on the INVITE, rtpengine_answer on the 200, rtpengine_delete on BYE or
failure. rtpengine runs in userspace (--table=-1: no kernel module), with its RTP ports in
the same range our switch's bench config uses (the two never run at once).

The SIPp side is the peers' own: uas_rr.xml answering, reg_uas_contact.xml registering it,
uac_rr.xml calling through the proxy; both carry SDP, so rtpengine allocates and frees a
port pair per side of every call. As in our switch's steps, SIPp sends no RTP: what is
measured is the signalling and the media anchoring (allocate, rewrite SDP, free), not
packet relay (benches/media measures that against rtpengine).

`step(t, peers, rate, seconds, hold_ms)` runs one bounded step and returns run.py's row;
`t` is run.py's module (its process, /proc and SIPp helpers).
"""
import os
import re
import shutil
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CFG = os.path.join(HERE, "kamailio-rtpengine.cfg")
RUN = "/tmp/swb-kamrtp"                 # the cfg's ctl socket lives here
NG_PORT, CLI_PORT = 22222, 22223       # the cfg names the NG port
KAM_PORT, UAS_PORT, UAC_PORT, REG_PORT = 5070, 5080, 5090, 5091   # as the peers' bench.py
RTP_MIN, RTP_MAX = 20000, 31999
MODULE = "/usr/lib/x86_64-linux-gnu/kamailio/modules/rtpengine.so"


def missing():
    """What this peer lacks on this machine (empty when it can run)."""
    need = [t for t in ("kamailio", "kamcmd", "rtpengine", "rtpengine-ctl", "sipp")
            if not shutil.which(t)]
    if not os.path.exists(MODULE):
        need.append(MODULE)
    return need


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def tree(pid):
    pids = [pid]
    for c in children_of(pid):
        pids += tree(c)
    return pids


def ctl_totals():
    """rtpengine's own count of the sessions it managed (proof the calls were anchored)."""
    p = subprocess.run(["rtpengine-ctl", "-ip", "127.0.0.1", "-port", str(CLI_PORT),
                        "list", "totals"], capture_output=True, text=True, timeout=10)
    m = re.search(r"Total managed sessions\s*:\s*(\d+)", p.stdout)
    return int(m.group(1)) if m else None


def step(t, peers, rate, seconds, hold_ms):
    os.makedirs(RUN, exist_ok=True)
    count = rate * seconds
    logs = {n: open(os.path.join(RUN, f"{n}.log"), "w") for n in ("rtpengine", "kamailio")}
    procs = []
    try:
        rtpe = t.start(["rtpengine", "--config-file=none", "--foreground", "--table=-1",
                        "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{NG_PORT}",
                        f"--listen-cli=127.0.0.1:{CLI_PORT}", f"--port-min={RTP_MIN}",
                        f"--port-max={RTP_MAX}", "--num-threads=2", "--log-stderr",
                        "--log-level=3", "--delete-delay=0"],
                       stdout=logs["rtpengine"], stderr=subprocess.STDOUT)
        procs.append(rtpe)
        kam = t.start(["kamailio", "-f", CFG, "-DD", "-E", "-m", "1024", "-M", "16",
                       "-P", os.path.join(RUN, "kamailio.pid"), "-A", "CHILDREN=2"],
                      stdout=logs["kamailio"], stderr=subprocess.STDOUT)
        procs.append(kam)
        time.sleep(2.0)
        for name, p in (("rtpengine", rtpe), ("kamailio", kam)):
            if p.poll() is not None:
                with open(os.path.join(RUN, f"{name}.log"), errors="replace") as f:
                    raise RuntimeError(f"{name} exited at start: {f.read()[-600:]}")
        kam_pids = tree(kam.pid)
        target = f"127.0.0.1:{KAM_PORT}"
        uas = t.start(t.sipp_cmd(target, os.path.join(peers, "uas_rr.xml"), UAS_PORT, RUN,
                                 "kr-uas", ["-l", str(t.SIPP_LIMIT * 2)]),
                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        procs.append(uas)
        time.sleep(0.5)
        reg = subprocess.run(t.sipp_cmd(target, os.path.join(peers, "reg_uas_contact.xml"),
                                        REG_PORT, RUN, "kr-reg", ["-m", "1", "-timeout", "10"]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=30)
        if reg.returncode != 0:
            raise RuntimeError("the UAS contact did not register through Kamailio")
        sessions0 = ctl_totals() or 0
        c0 = sum(t.proc_cpu(p) for p in kam_pids)
        r0, u0 = t.proc_cpu(rtpe.pid), t.proc_cpu(uas.pid)
        b0, e0, t0 = t.machine_busy_s(), t.udp_rcvbuf_errors(), time.time()
        uac = t.start(t.sipp_cmd(target, os.path.join(peers, "uac_rr.xml"), UAC_PORT, RUN,
                                 "kr-uac",
                                 ["-s", "service", "-d", str(hold_ms), "-r", str(rate),
                                  "-rp", "1000", "-m", str(count), "-l", str(t.SIPP_LIMIT),
                                  "-recv_timeout", "10000", "-timeout", str(seconds + 40),
                                  "-timeout_error"]),
                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        procs.append(uac)
        uac_cpu = 0.0
        while uac.poll() is None:
            uac_cpu = max(uac_cpu, t.proc_cpu(uac.pid))
            if time.time() - t0 > seconds + 60:
                t.log(f"  SIPp over its time bound; stopping PID {uac.pid}")
                break
            time.sleep(0.2)
        t.stop_proc(uac)
        wall = time.time() - t0
        time.sleep(1.0)
        kam_cpu = sum(t.proc_cpu(p) for p in kam_pids) - c0
        rtpe_cpu = t.proc_cpu(rtpe.pid) - r0
        uas_cpu = t.proc_cpu(uas.pid) - u0
        busy = t.machine_busy_s() - b0
        sessions = (ctl_totals() or 0) - sessions0
        st = t.last_stats(os.path.join(RUN, "kr-uac.csv"))
    finally:
        for p in reversed(procs):
            t.stop_proc(p)
        for f in logs.values():
            f.close()
    ok, failed = t.stat_int(st, "SuccessfulCall(C)"), t.stat_int(st, "FailedCall(C)")
    achieved = ok / max(0.001, t.stat_elapsed(st) - hold_ms / 1000.0) if st else 0.0
    cpu_s = kam_cpu + rtpe_cpu
    own = cpu_s + uas_cpu + uac_cpu
    return dict(system="kamailio+rtpengine", rate=rate, seconds=seconds, calls=count,
                successful=ok, failed=failed, retrans=t.stat_int(st, "Retransmissions(C)"),
                achieved_cps=round(achieved, 1),
                passed=t.judge(rate, count, ok, failed, achieved),
                invite_to_200_avg=st.get("ResponseTime1(C)"), sipp_rc=uac.returncode,
                cpu_s=round(cpu_s, 2), cpu_pct=round(100 * cpu_s / wall, 1),
                cpu_s_per_call=round(cpu_s / ok, 6) if ok else None,
                kamailio_cpu_pct=round(100 * kam_cpu / wall, 1),
                rtpengine_cpu_pct=round(100 * rtpe_cpu / wall, 1),
                uac_cpu_pct=round(100 * uac_cpu / wall, 1),
                uas_cpu_pct=round(100 * uas_cpu / wall, 1),
                others_cpu_pct=round(max(0.0, 100 * (busy - own) / wall), 1),
                udp_rcvbuf_errors=t.udp_rcvbuf_errors() - e0,
                rtpengine_sessions=sessions,
                fail_reasons=t.failure_reasons(st), elapsed_s=round(wall, 1))
