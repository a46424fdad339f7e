#!/usr/bin/env bash
# SIPp smoke load: 10,000 OPTIONS transactions at 2,000/s over UDP against a freshly built
# release binary on loopback. Passes when SIPp exits 0 (all calls successful) and its final
# statistics show every call successful and none failed.
#
# usage: bash sip-tests/sipp/run.sh
# env:   SIPP_CALLS (10000), SIPP_RATE (2000); SWITCHBOARD_BIN=PATH to start that binary
#        instead of building the release one; SIPP_TARGET=HOST:PORT to drive an already
#        running switch instead of starting one.
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
cleanup() {
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
        echo "run.sh: building the release binary"
        (cd "$repo" && cargo build --release --bin switchboard)
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

echo "run.sh: sipp $target -sf options_uac.xml -m $calls -r $rate -l $calls"
rc=0
# -timeout bounds the whole run; -timeout_error makes reaching it a failure.
# The 4 MB socket buffer keeps SIPp's own socket from dropping at these rates.
(cd "$work" && timeout 300 sipp "$target" -sf "$here/options_uac.xml" -i 127.0.0.1 -t u1 \
    -m "$calls" -r "$rate" -l "$calls" -nostdin -timeout 120s -timeout_error \
    -buff_size 4194304 -trace_stat -stf "$work/stat.csv" -fd 1 \
    -trace_err -error_file "$work/errors.log" -trace_screen -screen_file "$work/screen.log" \
    >"$work/sipp.out" 2>&1) || rc=$?

# The last row of the statistics file is the final dump at exit.
col() { # col NAME -> value of that column in the last row of stat.csv
    awk -F';' -v name="$1" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
        { last = $c }
        END { if (c) print last }' "$work/stat.csv" 2>/dev/null
}
ok=$(col 'SuccessfulCall(C)')
failed=$(col 'FailedCall(C)')
retrans=$(col 'Retransmissions(C)')
elapsed=$(col 'ElapsedTime(C)')
echo "run.sh: sipp exit $rc; successful $ok/$calls, failed ${failed:-?}, retransmissions ${retrans:-?}, elapsed ${elapsed:-?}"

if [[ $rc -ne 0 || "$ok" != "$calls" || "${failed:-0}" != "0" ]]; then
    echo "run.sh: FAILED" >&2
    [[ -f "$work/screen.log" ]] && tail -n 60 "$work/screen.log" >&2
    tail -n 20 "$work/sipp.out" >&2 || true
    [[ -s "$work/errors.log" ]] && head -n 60 "$work/errors.log" >&2
    if [[ -n "$switch_pid" ]]; then
        echo "--- switchboard stderr (tail) ---" >&2
        tail -n 50 "$work/switch.err" >&2 || true
    fi
    exit 1
fi
echo "run.sh: OK: $ok of $calls OPTIONS answered 200 by the switch"
