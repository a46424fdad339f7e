#!/usr/bin/env bash
# SIPp smoke load: 10,000 OPTIONS transactions at 2,000/s over UDP against a freshly built
# release binary on loopback. Passes when SIPp exits 0 (all calls successful) and its final
# statistics show every call successful and none failed. Then 1,000 token REGISTERs, and
# then the calls stage (calls.sh beside this file): 500 carrier calls at 100/s through a
# second switch whose application fetches <Dial><Client>bob</Client></Dial> from the
# customer app (examples/customer_app.rs), ringing a registered SIPp client.
#
# usage: bash sip-tests/sipp/run.sh
# env:   SIPP_CALLS (10000), SIPP_RATE (2000); SWITCHBOARD_BIN=PATH to start that binary
#        instead of building the release one; SIPP_TARGET=HOST:PORT to drive an already
#        running switch instead of starting one (the REGISTER and calls stages then do not
#        run). The calls stage's own knobs are listed in calls.sh.
# exit:  0 ok, 1 failure, 2 sipp is not installed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
calls=${SIPP_CALLS:-10000}
rate=${SIPP_RATE:-2000}

if ! command -v sipp >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing SIPp (Debian package sip-tester)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester >/dev/null
fi
if ! command -v sipp >/dev/null 2>&1; then
    echo "run.sh: sipp not found. Install SIPp (Debian/Ubuntu package 'sip-tester':" \
        "apt-get update && apt-get install -y sip-tester) and run again." >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-sipp.XXXXXX")
switch_pid=""
calls_pid=""
cleanup() {
    # The calls stage (calls.sh) stops what it started on SIGTERM; SIGKILL after 15 s.
    if [[ -n "$calls_pid" ]] && kill -0 "$calls_pid" 2>/dev/null; then
        kill -TERM "$calls_pid" 2>/dev/null || true
        for _ in $(seq 150); do
            kill -0 "$calls_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$calls_pid" 2>/dev/null || true
        wait "$calls_pid" 2>/dev/null || true
    fi
    if [[ -n "$switch_pid" ]] && kill -0 "$switch_pid" 2>/dev/null; then
        kill -TERM "$switch_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$switch_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$switch_pid" 2>/dev/null || true
        wait "$switch_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -n "${SIPP_TARGET:-}" ]]; then
    target=$SIPP_TARGET
    echo "run.sh: driving the switch already running at $target"
else
    if [[ -n "${SWITCHBOARD_BIN:-}" ]]; then
        bin=$SWITCHBOARD_BIN
    else
        # The customer app is for the calls stage; one build command for both (see calls.sh).
        echo "run.sh: building the release binary and the customer app"
        (cd "$repo" && cargo build --release --bin switchboard --example customer_app)
        bin="${CARGO_TARGET_DIR:-$repo/target}/release/switchboard"
        [[ "$bin" = /* ]] || bin="$repo/$bin"
    fi

    (cd "$repo" && exec "$bin" run -c conf/switchboard.toml --sip 127.0.0.1:0 --http 127.0.0.1:0) \
        >"$work/switch.out" 2>"$work/switch.err" </dev/null &
    switch_pid=$!

    # Wait (20 s at most) for `ready`.
    for _ in $(seq 200); do
        grep -qx 'ready' "$work/switch.out" 2>/dev/null && break
        if ! kill -0 "$switch_pid" 2>/dev/null; then
            echo "run.sh: switchboard exited before ready" >&2
            cat "$work/switch.out" "$work/switch.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    if ! grep -qx 'ready' "$work/switch.out"; then
        echo "run.sh: switchboard not ready after 20 s" >&2
        cat "$work/switch.out" >&2
        tail -n 50 "$work/switch.err" >&2
        exit 1
    fi
    target=$(sed -n 's|^listening sip/udp \(.*\)$|\1|p' "$work/switch.out" | head -n 1)
    if [[ -z "$target" ]]; then
        echo "run.sh: no 'listening sip/udp ADDR' line in:" >&2
        cat "$work/switch.out" >&2
        exit 1
    fi
    echo "run.sh: switchboard pid $switch_pid listening on sip/udp $target"
fi

# scenario NAME XML COUNT RATE [extra sipp args...]: runs one SIPp scenario to completion
# and fails the script unless every call succeeded.
scenario() {
    local name=$1 xml=$2 count=$3 rate=$4
    shift 4
    local out="$work/$name"
    mkdir -p "$out"
    echo "run.sh: [$name] sipp $target -sf $(basename "$xml") -m $count -r $rate $*"
    local rc=0
    # -timeout bounds the whole run; -timeout_error makes reaching it a failure.
    # The 4 MB socket buffer keeps SIPp's own socket from dropping at these rates.
    (cd "$out" && timeout 300 sipp "$target" -sf "$xml" -i 127.0.0.1 -t u1 \
        -m "$count" -r "$rate" -l "$count" -nostdin -timeout 120s -timeout_error \
        -buff_size 4194304 -trace_stat -stf "$out/stat.csv" -fd 1 \
        -trace_err -error_file "$out/errors.log" -trace_screen -screen_file "$out/screen.log" \
        "$@" >"$out/sipp.out" 2>&1) || rc=$?
    # The last row of the statistics file is the final dump at exit.
    col() { # col NAME -> value of that column in the last row of stat.csv
        awk -F';' -v name="$1" '
            NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
            { last = $c }
            END { if (c) print last }' "$out/stat.csv" 2>/dev/null || true
    }
    local ok failed retrans elapsed
    ok=$(col 'SuccessfulCall(C)')
    failed=$(col 'FailedCall(C)')
    retrans=$(col 'Retransmissions(C)')
    elapsed=$(col 'ElapsedTime(C)')
    echo "run.sh: [$name] sipp exit $rc; successful $ok/$count, failed ${failed:-?}, retransmissions ${retrans:-?}, elapsed ${elapsed:-?}"
    if [[ $rc -ne 0 || "$ok" != "$count" || "${failed:-0}" != "0" ]]; then
        echo "run.sh: [$name] FAILED" >&2
        [[ -f "$out/screen.log" ]] && tail -n 60 "$out/screen.log" >&2
        tail -n 20 "$out/sipp.out" >&2 || true
        [[ -s "$out/errors.log" ]] && head -n 60 "$out/errors.log" >&2
        if [[ -n "$switch_pid" ]]; then
            echo "--- switchboard stderr (tail) ---" >&2
            tail -n 50 "$work/switch.err" >&2 || true
        fi
        exit 1
    fi
}

scenario options "$here/options_uac.xml" "$calls" "$rate"
echo "run.sh: OK: $calls of $calls OPTIONS answered 200 by the switch"

# REGISTER: distinct users, each with its own token from `switchboard token`, in a SIPp
# injection file; afterwards the REST API must list every one of them as available.
if [[ -z "${SIPP_TARGET:-}" ]]; then
    users=${SIPP_REG_USERS:-1000}
    conf="$repo/conf/switchboard.toml"
    echo "run.sh: minting $users tokens with switchboard token"
    {
        echo "SEQUENTIAL"
        for i in $(seq -f '%06g' 1 "$users"); do
            echo "r$i;$("$bin" token -c "$conf" --identity "r$i" --incoming --ttl 3600)"
        done
    } >"$work/users.csv"
    scenario register "$here/register_uac.xml" "$users" 500 -inf "$work/users.csv" -key realm switchboard.local
    http=$(sed -n 's|^listening http \(.*\)$|\1|p' "$work/switch.out" | head -n 1)
    python3 - "$http" "$users" <<'PY'
import base64, json, sys, urllib.request
http, users = sys.argv[1], int(sys.argv[2])
acct, token = "AC00000000000000000000000000000001", "demo-auth-token-change-me"
req = urllib.request.Request(
    f"http://{http}/2010-04-01/Accounts/{acct}/Clients.json?PageSize=1000000",
    headers={"Authorization": "Basic " + base64.b64encode(f"{acct}:{token}".encode()).decode()})
clients = json.load(urllib.request.urlopen(req, timeout=10))["clients"]
available = {c["identity"] for c in clients if c["status"] == "available"}
missing = [f"r{i:06d}" for i in range(1, users + 1) if f"r{i:06d}" not in available]
print(f"run.sh: REST lists {len(available)} available clients; missing {len(missing)}")
sys.exit(1 if missing else 0)
PY
    echo "run.sh: OK: $users distinct users registered with their own tokens and show available"
fi

# Calls: carrier INVITE -> signed webhook to the customer app -> <Dial><Client>bob</Client>
# -> the registered client, 500 times at 100/s (calls.sh, its own switch and processes).
# Run in the background and waited for, so the trap above can stop it by its PID.
if [[ -z "${SIPP_TARGET:-}" ]]; then
    bash "$here/calls.sh" "$bin" </dev/null &
    calls_pid=$!
    calls_rc=0
    wait "$calls_pid" || calls_rc=$?
    calls_pid=""
    if [[ $calls_rc -ne 0 ]]; then
        echo "run.sh: calls stage FAILED (exit $calls_rc)" >&2
        exit 1
    fi
fi
