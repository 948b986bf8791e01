#!/usr/bin/env bash
# Multi-host LAN test with real multicast, in network namespaces this script creates and always
# deletes: four hosts (strl-h1..4) on one bridge (in its own namespace, strl-sw), one agent per
# host on that host's veth, quorum mode. Checks discovery, revoke, election, clean leave,
# kill -9, a partition (one host's link down) and healing. Addresses exist only inside the
# namespaces. Needs root and iproute2; otherwise it skips, saying why.
#
# With --ipv6 (issue 19) the same checks run on IPv6 only: each host has just a link-local
# address (fe80::77:N, no IPv4), the group is [ff12::5354]:5354, and IPv6 multicast crosses the
# bridge (it does not flow on lo). Both variants print figures from the agents' event logs
# (wall-clock times the agents record, so the polling of the checks does not count): join,
# detect (kill -9), revoke and election.
#
#   sudo Tests/netns/lan.sh [path/to/starling] [--ipv6]
set -uo pipefail
BIN=${1:-.build/release/starling}
FAMILY=${2:-}
if [ -n "$FAMILY" ] && [ "$FAMILY" != --ipv6 ]; then echo "usage: lan.sh [path/to/starling] [--ipv6]" >&2; exit 2; fi
if [ "$(id -u)" != 0 ]; then echo "netns LAN test skipped: needs root"; exit 0; fi
if ! command -v ip >/dev/null; then echo "netns LAN test skipped: no ip (iproute2)"; exit 0; fi
if [ ! -x "$BIN" ]; then echo "netns LAN test: no binary at $BIN" >&2; exit 1; fi
BIN=$(readlink -f "$BIN")
HOSTS=4
NET=10.77.0
GROUP=239.255.83.84:5354
LABEL=IPv4
if [ "$FAMILY" = --ipv6 ]; then GROUP='[ff12::5354]:5354'; LABEL=IPv6; fi
WORK=$(mktemp -d)
PIDS=()
FIGURES=()
failures=0
checks=0

cleanup() {
  [ -n "${LAN_KEEP:-}" ] && cp -r "$WORK" "$LAN_KEEP"
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  for i in $(seq 1 $HOSTS); do ip netns del "strl-h$i" 2>/dev/null; done
  ip netns del strl-sw 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if ! ip netns add strl-sw 2>/dev/null; then echo "netns LAN test skipped: cannot create network namespaces here"; exit 0; fi
ip -n strl-sw link add br0 type bridge || { echo "netns LAN test skipped: no bridge support"; exit 0; }
ip -n strl-sw link set br0 type bridge mcast_snooping 0 2>/dev/null
ip -n strl-sw link set br0 up
for i in $(seq 1 $HOSTS); do
  ip netns add "strl-h$i"
  ip link add "strl-v$i" netns "strl-h$i" type veth peer name "sw$i" netns strl-sw
  ip -n "strl-h$i" link set "strl-v$i" name eth1 2>/dev/null || true
  if [ "$FAMILY" = --ipv6 ]; then
    # One fixed link-local address, usable at once (no duplicate address detection to wait for).
    ip netns exec "strl-h$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
    ip -n "strl-h$i" link set eth1 addrgenmode none 2>/dev/null
    ip -n "strl-h$i" addr add "fe80::77:$i/64" dev eth1 nodad || { echo "netns LAN test skipped: no IPv6 in namespaces"; exit 0; }
  else
    ip -n "strl-h$i" addr add "$NET.$i/24" dev eth1
  fi
  ip -n "strl-h$i" link set eth1 up
  ip -n "strl-h$i" link set lo up
  ip -n strl-sw link set "sw$i" master br0
  ip -n strl-sw link set "sw$i" up
done

# A link just set up can take a moment to carry frames (a datagram sent at once is lost, and an
# agent's first ANNOUNCE with it): wait until every link reports LOWER_UP, and a second more.
for _ in $(seq 1 50); do
  down=0
  for i in $(seq 1 $HOSTS); do ip -n "strl-h$i" link show eth1 | grep -q LOWER_UP || down=1; done
  [ $down = 0 ] && break
  sleep 0.2
done
sleep 1

start() {  # start host i's agent
  local i=$1
  ip netns exec "strl-h$i" "$BIN" agent --name "h$i" --interface eth1 --group "$GROUP" --quorum majority --expect $HOSTS \
    --state-dir "$WORK/h$i" --event-log "$WORK/h$i.events" --log-level info 2>>"$WORK/h$i.log" &
  PIDS[$i]=$!
}
cli() {  # cli HOST ARGS...: run the CLI inside host HOST's namespace
  local i=$1; shift
  ip netns exec "strl-h$i" "$BIN" "$@" --interface eth1 --group "$GROUP" --timeout 1
}
now_us() { date +%s%6N; }
first_us() {  # first_us HOST TEXT SINCE_US: wall µs of HOST's first event holding TEXT at or after SINCE_US
  grep -F "$2" "$WORK/h$1.events" 2>/dev/null | sed -n 's/^{"t_us":\([0-9]*\),.*/\1/p' | awk -v since="$3" '$1 >= since { print; exit }'
}
figure() {  # figure NAME SINCE_US TEXT HOST...: time from SINCE_US until the last HOST records TEXT
  local name=$1 since=$2 text=$3 last=0 t i; shift 3
  for i in "$@"; do
    t=$(first_us "$i" "$text" "$since")
    if [ -z "$t" ]; then FIGURES+=("$name: h$i never recorded it"); return; fi
    [ "$t" -gt "$last" ] && last=$t
  done
  FIGURES+=("$(printf '%s: %d.%d ms' "$name" $(((last - since) / 1000)) $(((last - since) % 1000 / 100)))")
}
check() {  # check NAME SECONDS COMMAND...: retry until the command succeeds
  local name=$1 seconds=$2; shift 2
  checks=$((checks + 1))
  local end=$((SECONDS + seconds))
  while [ $SECONDS -lt $end ]; do
    if "$@" >/dev/null 2>&1; then echo "pass  $name"; return 0; fi
    sleep 0.2
  done
  echo "FAIL  $name"; failures=$((failures + 1)); return 1
}
alive_count() {  # alive_count HOST N: HOST lists N alive (itself included)
  [ "$(cli "$1" members --json | grep -c '"status": "alive"')" = "$2" ]
}
status_of() {  # status_of HOST NAME STATUS
  cli "$1" members --json | tr -d '\n ' | grep -q "\"name\":\"$2\",\"id\":\"[0-9a-f]*\",\"status\":\"$3\""
}
holds() {  # holds HOST ID
  cli "$1" revoked --json --to "h$1" | grep -q "\"$2\""
}
leader_of() {  # leader_of HOST: prints HOST's leader for topic jobs
  cli "$1" leader jobs --json --to "h$1" | tr -d '\n ' | sed -n 's/.*"leader":"\{0,1\}\([^",]*\)"\{0,1\},.*/\1/p'
}
same_leader() {  # every running host names the same non-null leader
  local first; first=$(leader_of "$1"); [ -n "$first" ] && [ "$first" != null ] || return 1
  shift; for i in "$@"; do [ "$(leader_of "$i")" = "$first" ] || return 1; done
}

for i in $(seq 1 $HOSTS); do start "$i"; done
check "discovery across hosts" 10 bash -c "$(declare -f cli alive_count); BIN=$BIN GROUP='$GROUP'; for i in 1 2 3 4; do alive_count \$i 4 || exit 1; done"
if [ "$FAMILY" = --ipv6 ]; then
  check "members lists link-local addresses (RFC 5952)" 5 bash -c "$(declare -f cli); BIN=$BIN GROUP='$GROUP'; cli 1 members --to h1 | grep -q '\[fe80::77:2\]:'"
fi
t0=$(now_us)
check "revoke reaches every host" 5 bash -c "$(declare -f cli); BIN=$BIN GROUP='$GROUP'; cli 1 revoke lan-id-1 | grep -c lan >/dev/null; for i in 1 2 3 4; do cli \$i revoked --json --to h\$i | grep -q lan-id-1 || exit 1; done"
# The CLI sends the revoke to the group: every agent takes it from there, none waits for h1.
figure "revoke (revoke command to all 4 holding it, CLI start included)" "$t0" '"lan-id-1"' 1 2 3 4
t0=$(now_us)
cli 2 elect jobs >/dev/null
check "one leader for jobs" 5 bash -c "$(declare -f cli leader_of same_leader); BIN=$BIN GROUP='$GROUP'; same_leader 1 2 3 4"
figure "election (elect command to a leader on all 4, CLI start included)" "$t0" '"topic":"jobs","leader":"h' 1 2 3 4

kill -TERM "${PIDS[4]}"; wait "${PIDS[4]}" 2>/dev/null
check "clean stop seen as left" 5 bash -c "$(declare -f cli status_of); BIN=$BIN GROUP='$GROUP'; status_of 1 h4 left && status_of 2 h4 left"
t0=$(now_us)
start 4
check "restarted host rejoins" 10 bash -c "$(declare -f cli alive_count); BIN=$BIN GROUP='$GROUP'; alive_count 1 4 && alive_count 4 4"
# Join: from the restarted agent's first event (its sockets open) until every other host lists it.
figure "join (h4 restarted, until h1-h3 list it)" "$(first_us 4 '"event":"searching"' "$t0")" '"event":"joined","name":"h4"' 1 2 3

t0=$(now_us)
kill -9 "${PIDS[3]}"; wait "${PIDS[3]}" 2>/dev/null
check "kill -9 detected as dead" 5 bash -c "$(declare -f cli status_of); BIN=$BIN GROUP='$GROUP'; status_of 1 h3 dead && status_of 2 h3 dead && status_of 4 h3 dead"
figure "detect (kill -9 of h3, until h1 h2 h4 call it dead)" "$t0" '"event":"dead","name":"h3"' 1 2 4
start 3
check "killed host restarts from its state" 10 bash -c "$(declare -f cli alive_count holds); BIN=$BIN GROUP='$GROUP'; alive_count 1 4 && holds 3 lan-id-1"

ip -n strl-sw link set sw2 down
# The cut-off side (h2 alone) hears nobody: Lifeguard's local health slows its own verdicts up
# to 9x (it is more likely the broken one), so it may take ~20 s to call the others dead.
check "partition detected on both sides" 30 bash -c "$(declare -f cli status_of); BIN=$BIN GROUP='$GROUP'; status_of 1 h2 dead && status_of 2 h1 dead"
cli 1 revoke lan-id-2 >/dev/null
cli 1 elect jobs >/dev/null
check "majority side has a leader" 15 bash -c "$(declare -f cli leader_of same_leader); BIN=$BIN GROUP='$GROUP'; same_leader 1 3 4"
cli 2 elect jobs >/dev/null
check "minority side has no leader and says so (quorum)" 15 bash -c "$(declare -f cli leader_of); BIN=$BIN GROUP='$GROUP'; [ \"\$(leader_of 2)\" = null ] && grep -q 'no quorum' $WORK/h2.log"

ip -n strl-sw link set sw2 up
check "views merge after healing" 15 bash -c "$(declare -f cli alive_count); BIN=$BIN GROUP='$GROUP'; for i in 1 2 3 4; do alive_count \$i 4 || exit 1; done"
check "revoked sets converge after healing" 10 bash -c "$(declare -f cli holds); BIN=$BIN GROUP='$GROUP'; holds 2 lan-id-2"
check "one leader per topic again" 10 bash -c "$(declare -f cli leader_of same_leader); BIN=$BIN GROUP='$GROUP'; same_leader 1 2 3 4"

check "watch streams an event from another host" 10 bash -c "$(declare -f cli); BIN=$BIN GROUP='$GROUP'; (sleep 0.3; cli 3 revoke lan-id-3 >/dev/null) & cli 1 watch --json | grep -q lan-id-3"

# The conformance suite (Protocol.md §9) from h2 against an agent of its own on h1, on a group
# port of its own: every case crosses the bridge, in this run's family.
CONF=$(dirname "$BIN")/starling-conformance
if [ -x "$CONF" ]; then
  CGROUP=239.255.83.84:5355
  [ "$FAMILY" = --ipv6 ] && CGROUP='[ff12::5354]:5355'
  ip netns exec strl-h1 "$BIN" agent --name conf-target --interface eth1 --group "$CGROUP" --log-level warn 2>>"$WORK/conf-target.log" &
  PIDS[9]=$!
  checks=$((checks + 1))
  if ip netns exec strl-h2 "$CONF" --group "$CGROUP" --interface eth1 > "$WORK/conformance.txt" 2>&1; then
    echo "pass  conformance suite across hosts ($(grep -E '^[0-9]+ passed' "$WORK/conformance.txt"))"
  else
    echo "FAIL  conformance suite across hosts"; grep -E "FAIL|passed|conformance:" "$WORK/conformance.txt" | head -20
    failures=$((failures + 1))
  fi
else
  echo "conformance suite across hosts skipped: no $CONF"
fi

for line in "${FIGURES[@]}"; do echo "figure $LABEL $line"; done
echo "netns $LABEL: $((checks - failures)) passed, $failures failed"
[ $failures -eq 0 ]
