#!/usr/bin/env bash
# SIPp calls stage (run.sh runs it after the OPTIONS and REGISTER stages): inbound carrier
# calls through the switch, end to end, as benches/calls/run.py does under load:
#
#   customer_app (/voice -> <Dial><Client>bob</Client></Dial>) <- signed webhook -- switch
#   carrier_uac.xml -- INVITE +15550100001 --> switch -- INVITE --> client_uas.xml (bob,
#                                                 registered by client_register.xml)
#
# A fresh switch runs from a copy of conf/switchboard.toml whose application (the one the
# first [[numbers]] entry points at) fetches the customer app's /voice instead of its inline
# twiml. 500 calls at 100 calls/s, each held 1 s. Passes when: the carrier SIPp reports every
# call successful and none failed; bob's SIPp saw every call through; the customer app
# logged one /voice request per call, every one with a valid X-Twilio-Signature; the REST
# Calls.json lists every inbound (parent) call as completed (polled a few seconds while the
# last ones finish).
#
# usage: bash sip-tests/sipp/calls.sh [SWITCHBOARD_BIN]
#        (no argument: builds the release binary, as run.sh does)
# env:   SIPP_CALL_COUNT (500), SIPP_CALL_RATE (100), SIPP_CALL_HOLD_MS (1000);
#        CUSTOMER_APP_BIN=PATH to use that customer app instead of building the example;
#        SIPP_CALLS_KEEP=1 keeps the work directory (its path is printed).
# exit:  0 ok, 1 failure. Everything is on 127.0.0.1; every process started here is stopped
#        by its PID on exit; each wait is bounded (the stage takes ~10 s after the build).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
count=${SIPP_CALL_COUNT:-500}
rate=${SIPP_CALL_RATE:-100}
hold_ms=${SIPP_CALL_HOLD_MS:-1000}
identity=bob
src_conf="$repo/conf/switchboard.toml"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ "$target_dir" = /* ]] || target_dir="$repo/$target_dir"
acct=AC00000000000000000000000000000001
acct_token=demo-auth-token-change-me

say() { echo "run.sh: [calls] $*"; }

# The same build command as run.sh's, so after its build this one has nothing to do (building
# the example alone would change the library's features and rebuild it, and run.sh's next
# build would rebuild it back).
if [[ -z "${1:-}" || -z "${CUSTOMER_APP_BIN:-}" ]]; then
    say "cargo build --release --bin switchboard --example customer_app"
    (cd "$repo" && cargo build --release --bin switchboard --example customer_app)
fi
bin=${1:-$target_dir/release/switchboard}
app_bin=${CUSTOMER_APP_BIN:-$target_dir/release/examples/customer_app}

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-sipp-calls.XXXXXX")
t_start=$SECONDS   # the stage proper, builds excluded
pids=()       # every background process started here, stopped in reverse order on exit
stop_pid() {  # stop_pid PID: SIGTERM, SIGKILL after 5 s
    local pid=$1
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${pids[$i]}"
    done
    if [[ "${SIPP_CALLS_KEEP:-}" == 1 ]]; then
        echo "run.sh: [calls] work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# dump: everything useful for a post-mortem, on stderr.
dump() {
    {
        echo "--- carrier SIPp (carrier_uac.xml): screen ---"
        tail -n 60 "$work/uac/screen.log" 2>/dev/null || true
        tail -n 20 "$work/uac/sipp.out" 2>/dev/null || true
        if [[ -s "$work/uac/errors.log" ]]; then
            echo "--- carrier SIPp: errors (head) ---"
            head -n 60 "$work/uac/errors.log"
        fi
        echo "--- bob's SIPp (client_uas.xml): screen ---"
        tail -n 40 "$work/uas/screen.log" 2>/dev/null || true
        tail -n 20 "$work/uas/sipp.out" 2>/dev/null || true
        if [[ -s "$work/uas/errors.log" ]]; then
            echo "--- bob's SIPp: errors (head) ---"
            head -n 40 "$work/uas/errors.log"
        fi
        echo "--- registration (client_register.xml) ---"
        tail -n 20 "$work/reg/sipp.out" 2>/dev/null || true
        [[ -s "$work/reg/errors.log" ]] && head -n 40 "$work/reg/errors.log"
        echo "--- customer app: first and last requests ---"
        head -n 5 "$work/app.out" 2>/dev/null || true
        echo "..."
        tail -n 5 "$work/app.out" 2>/dev/null || true
        echo "--- switchboard stdout ---"
        cat "$work/switch.out" 2>/dev/null || true
        echo "--- switchboard stderr (tail) ---"
        tail -n 60 "$work/switch.err" 2>/dev/null || true
    } >&2
}
fail() {
    echo "run.sh: [calls] FAILED: $*" >&2
    dump
    exit 1
}

# wait_line FILE REGEX PID SECONDS WHAT: polls FILE until a line matches the (sed) REGEX and
# prints its first group; fails if PID exits first or time runs out.
wait_line() {
    local file=$1 rx=$2 pid=$3 secs=$4 what=$5 v
    for _ in $(seq $((secs * 10))); do
        v=$(sed -n "s|$rx|\1|p" "$file" 2>/dev/null | head -n 1)
        if [[ -n "$v" ]]; then
            echo "$v"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "$what exited before printing /$rx/"
        sleep 0.1
    done
    fail "$what printed no /$rx/ within $secs s"
}

# stat FILE COLUMN: that column of the last row of a SIPp statistics file.
stat() {
    awk -F';' -v name="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
        { last = $c }
        END { if (c) print last }' "$1" 2>/dev/null || true
}

# A UDP port that is free now on 127.0.0.1 (for bob's SIPp, which must be known in advance
# because it goes into the registration's Contact).
free_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# 1. The customer app: /voice dials client bob.
cat >"$work/script.toml" <<EOF
[[route]]
path = "/voice"
body = "<Response><Dial><Client>$identity</Client></Dial></Response>"
EOF
voice_path=/voice
"$app_bin" --listen 127.0.0.1:0 --auth-token "$acct_token" --script "$work/script.toml" \
    >"$work/app.out" 2>"$work/app.err" </dev/null &
app_pid=$!
pids+=("$app_pid")
app_addr=$(wait_line "$work/app.out" '^listening http://\(.*\)$' "$app_pid" 10 "customer app")
say "customer app pid $app_pid on http://$app_addr"

# 2. The config copy: the number's application fetches the app's /voice (POST) instead of
#    running inline twiml (same rewrite as benches/calls/run.py write_config).
read -r number app_sid < <(python3 - "$src_conf" "$work/switchboard.toml" \
    "http://$app_addr$voice_path" <<'PY'
import re, sys, tomllib
src, dst, voice_url = sys.argv[1:]
cfg = tomllib.load(open(src, "rb"))
entry = cfg["numbers"][0]
app_sid = entry["application"]
text = open(src).read()
for m in re.finditer(r"^\[\[applications\]\][^\n]*\n(?:(?!\[).*\n?)*", text, re.M):
    block = m.group(0)
    if not re.search(rf'^sid\s*=\s*"{app_sid}"', block, re.M):
        continue
    block = re.sub(r"^voice_method\s*=.*\n", "", block, flags=re.M)
    new, n = re.subn(r"^(twiml|voice_url)\s*=.*$",
                     lambda _: f'voice_url = "{voice_url}"\nvoice_method = "POST"', block,
                     count=1, flags=re.M)
    if n != 1:
        sys.exit(f"{src}: application {app_sid} has neither twiml nor voice_url")
    text = text[:m.start()] + new + text[m.end():]
    break
else:
    sys.exit(f"{src}: no [[applications]] table with sid {app_sid}")
open(dst, "w").write(text)
app = next(a for a in tomllib.load(open(dst, "rb"))["applications"] if a["sid"] == app_sid)
if app.get("voice_url") != voice_url or "twiml" in app:
    sys.exit(f"{dst}: rewriting the application failed: {app}")
print(entry["number"], app_sid)
PY
) || fail "could not write the config copy"
[[ -n "${app_sid:-}" ]] || fail "could not write the config copy"
"$bin" check -c "$work/switchboard.toml" >"$work/check.out" 2>&1 ||
    fail "switchboard check rejects the config copy: $(cat "$work/check.out")"

# 3. The switch, on free loopback ports.
(cd "$repo" && exec "$bin" run -c "$work/switchboard.toml" --sip 127.0.0.1:0 --http 127.0.0.1:0) \
    >"$work/switch.out" 2>"$work/switch.err" </dev/null &
switch_pid=$!
pids+=("$switch_pid")
wait_line "$work/switch.out" '^\(ready\)$' "$switch_pid" 20 "switchboard" >/dev/null
target=$(wait_line "$work/switch.out" '^listening sip/udp \(.*\)$' "$switch_pid" 1 "switchboard")
http=$(wait_line "$work/switch.out" '^listening http \(.*\)$' "$switch_pid" 1 "switchboard")
say "switchboard pid $switch_pid on sip/udp $target, http $http; $number -> $app_sid -> http://$app_addr$voice_path"

# common SIPp options: statistics every second, errors and screen to files, 4 MB buffers.
sipp_common() { # sipp_common DIR: sets the array `common`
    common=(-i 127.0.0.1 -nostdin -buff_size 4194304 -trace_stat -stf "$1/stat.csv" -fd 1
        -trace_err -error_file "$1/errors.log" -trace_screen -screen_file "$1/screen.log")
}
mkdir -p "$work/uas" "$work/reg" "$work/uac"

# 4. Client bob: a SIPp UAS answering every call (bound in time by -timeout: it is stopped
#    long before), then registered with a bearer token and Contact = the UAS's address.
uas_port=$(free_port)
sipp_common "$work/uas"
(cd "$work/uas" && exec sipp -sf "$here/client_uas.xml" -p "$uas_port" -l $((count * 2)) \
    -timeout 120s "${common[@]}") >"$work/uas/sipp.out" 2>&1 </dev/null &
uas_pid=$!
pids+=("$uas_pid")
sleep 0.3
kill -0 "$uas_pid" 2>/dev/null || fail "bob's SIPp (client_uas.xml on 127.0.0.1:$uas_port) did not start"

token=$("$bin" token -c "$work/switchboard.toml" --identity "$identity" --incoming --ttl 3600) ||
    fail "switchboard token failed"
printf 'SEQUENTIAL\n%s;%s;\n' "$token" "$identity" >"$work/bob.csv"
realm=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["server"].get("realm", "switchboard.local"))' "$work/switchboard.toml")
reg_rc=0
sipp_common "$work/reg"
(cd "$work/reg" && timeout 30 sipp "$target" -sf "$here/client_register.xml" -inf "$work/bob.csv" \
    -key realm "$realm" -key contact_host "127.0.0.1:$uas_port" -m 1 -timeout 10s -timeout_error \
    "${common[@]}") >"$work/reg/sipp.out" 2>&1 </dev/null || reg_rc=$?
[[ $reg_rc -eq 0 && "$(stat "$work/reg/stat.csv" 'SuccessfulCall(C)')" == 1 ]] ||
    fail "registering $identity (Contact 127.0.0.1:$uas_port) failed: sipp exit $reg_rc"
say "client $identity registered (Contact sip:$identity@127.0.0.1:$uas_port, bearer token)"

# 5. The carrier: COUNT calls at RATE/s to the number, each held HOLD_MS.
say "sipp $target -sf carrier_uac.xml -s $number -m $count -r $rate -d $hold_ms"
uac_t0=$SECONDS
sipp_common "$work/uac"
(cd "$work/uac" && exec timeout 90 sipp "$target" -sf "$here/carrier_uac.xml" -s "$number" \
    -m "$count" -r "$rate" -rp 1000 -d "$hold_ms" -l "$count" -recv_timeout 10000 \
    -timeout 60s -timeout_error "${common[@]}") >"$work/uac/sipp.out" 2>&1 </dev/null &
uac_pid=$!
pids+=("$uac_pid")
uac_rc=0
wait "$uac_pid" || uac_rc=$?
uac_ok=$(stat "$work/uac/stat.csv" 'SuccessfulCall(C)')
uac_failed=$(stat "$work/uac/stat.csv" 'FailedCall(C)')
uac_retrans=$(stat "$work/uac/stat.csv" 'Retransmissions(C)')
say "carrier sipp exit $uac_rc after $((SECONDS - uac_t0)) s; successful ${uac_ok:-?}/$count," \
    "failed ${uac_failed:-?}, retransmissions ${uac_retrans:-?}"

# 6. Bob's side: its calls end after the carrier's (BYE relayed, then 1 s timewait); its
#    statistics are dumped every second. Wait (10 s at most) for all of them.
for _ in $(seq 100); do
    [[ "$(stat "$work/uas/stat.csv" 'SuccessfulCall(C)')" == "$count" ]] && break
    kill -0 "$uas_pid" 2>/dev/null || break
    sleep 0.1
done
uas_ok=$(stat "$work/uas/stat.csv" 'SuccessfulCall(C)')
uas_failed=$(stat "$work/uas/stat.csv" 'FailedCall(C)')
uas_created=$(stat "$work/uas/stat.csv" 'TotalCallCreated')

# 7. The customer app's log and the REST call list (polled up to 10 s for the last calls).
checks=$(python3 - "$work/app.out" "$voice_path" "$http" "$acct" "$acct_token" "$count" <<'PY'
import base64, collections, json, sys, time, urllib.request
app_log, voice_path, http, acct, token, count = sys.argv[1:6] + [int(sys.argv[6])]

recs = []
for line in open(app_log, errors="replace"):
    if line.startswith("{"):
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass
voice = [r for r in recs if r.get("path") == voice_path]
signed = sum(1 for r in voice if r.get("signature_ok") is True)
statuses = dict(collections.Counter(str(r.get("status")) for r in voice))

auth = "Basic " + base64.b64encode(f"{acct}:{token}".encode()).decode()
def calls():
    out, url = [], f"/2010-04-01/Accounts/{acct}/Calls.json?PageSize=1000"
    for _ in range(20):                     # pages: 1,000 calls each
        req = urllib.request.Request(f"http://{http}{url}", headers={"Authorization": auth})
        page = json.load(urllib.request.urlopen(req, timeout=10))
        out += page["calls"]
        url = page.get("next_page_uri")
        if not url:
            break
    return out

deadline, rest_err = time.time() + 10, None
while True:
    try:
        all_calls = calls()
        rest_err = None
    except Exception as e:                  # reported below; keep polling until the deadline
        all_calls, rest_err = [], f"{type(e).__name__}: {e}"
    parents = [c for c in all_calls if c.get("direction") == "inbound"]
    completed = sum(1 for c in parents if c.get("status") == "completed")
    if (completed == count and len(parents) == count) or time.time() > deadline:
        break
    time.sleep(0.5)
children = [c for c in all_calls if c.get("parent_call_sid")]
print(json.dumps(dict(
    app_requests=len(recs), voice=len(voice), voice_signed=signed, voice_statuses=statuses,
    other_paths=sorted({r.get("path") for r in recs} - {voice_path}),
    rest_calls=len(all_calls), inbound=len(parents), inbound_completed=completed,
    inbound_statuses=dict(collections.Counter(c.get("status") for c in parents)),
    children=len(children),
    children_statuses=dict(collections.Counter(c.get("status") for c in children)),
    rest_error=rest_err), separators=(",", ":")))
PY
) || fail "checking the customer app's log and REST failed: $checks"
jget() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$checks" "$1"; }
voice=$(jget voice)
voice_signed=$(jget voice_signed)
inbound=$(jget inbound)
inbound_completed=$(jget inbound_completed)

say "bob's sipp: successful ${uas_ok:-?}/$count, failed ${uas_failed:-?}, calls received ${uas_created:-?}"
say "customer app: $voice $voice_path requests, $voice_signed with signature_ok; REST: $inbound inbound calls, $inbound_completed completed"
say "details: $checks"

problems=()
[[ $uac_rc -eq 0 ]] || problems+=("carrier sipp exited $uac_rc")
[[ "$uac_ok" == "$count" ]] || problems+=("carrier: ${uac_ok:-?}/$count successful")
[[ "${uac_failed:-x}" == 0 ]] || problems+=("carrier: ${uac_failed:-?} failed")
[[ "$uas_ok" == "$count" ]] || problems+=("bob: ${uas_ok:-?}/$count successful")
[[ "$voice" == "$count" ]] || problems+=("customer app: $voice $voice_path requests, want $count")
[[ "$voice_signed" == "$voice" ]] || problems+=("customer app: $((voice - voice_signed)) unsigned/bad signatures")
[[ "$inbound" == "$count" && "$inbound_completed" == "$count" ]] ||
    problems+=("REST: $inbound_completed of $inbound inbound calls completed, want $count of $count")
if [[ ${#problems[@]} -gt 0 ]]; then
    msg=$(printf '%s; ' "${problems[@]}")
    fail "${msg%; }"
fi

echo "run.sh: OK: calls: $count/$count carrier calls to $number completed at $rate/s (0 failed);" \
    "bob answered $uas_ok; customer app served $voice signed $voice_path webhooks;" \
    "REST lists $inbound_completed inbound calls completed (stage $((SECONDS - t_start)) s)"
