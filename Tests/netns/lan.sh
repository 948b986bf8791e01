#!/usr/bin/env bash
# Multi-host LAN test with real multicast, in network namespaces this script creates and always
# deletes: four hosts (strl-h1..4) on one bridge (in its own namespace, strl-sw), one agent per
# host on that host's veth, quorum mode. Checks discovery, revoke, election, clean leave,
# kill -9, a partition (one host's link down) and healing. Addresses exist only inside the
# namespaces. Needs root and iproute2; otherwise it skips, saying why.
#
#   sudo Tests/netns/lan.sh [path/to/starling]
set -uo pipefail
BIN=${1:-.build/release/starling}
if [ "$(id -u)" != 0 ]; then echo "netns LAN test skipped: needs root"; exit 0; fi
if ! command -v ip >/dev/null; then echo "netns LAN test skipped: no ip (iproute2)"; exit 0; fi
if [ ! -x "$BIN" ]; then echo "netns LAN test: no binary at $BIN" >&2; exit 1; fi
BIN=$(readlink -f "$BIN")
HOSTS=4
NET=10.77.0
GROUP=239.255.83.84:5354
WORK=$(mktemp -d)
PIDS=()
failures=0
checks=0

cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; done
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
  ip -n "strl-h$i" addr add "$NET.$i/24" dev eth1
  ip -n "strl-h$i" link set eth1 up
  ip -n "strl-h$i" link set lo up
  ip -n strl-sw link set "sw$i" master br0
  ip -n strl-sw link set "sw$i" up
done

start() {  # start host i's agent
  local i=$1
  ip netns exec "strl-h$i" "$BIN" agent --name "h$i" --interface eth1 --group $GROUP --quorum majority --expect $HOSTS \
    --state-dir "$WORK/h$i" --log-level info 2>>"$WORK/h$i.log" &
  PIDS[$i]=$!
}
cli() {  # cli HOST ARGS...: run the CLI inside host HOST's namespace
  local i=$1; shift
  ip netns exec "strl-h$i" "$BIN" "$@" --interface eth1 --group $GROUP --timeout 1
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
check "discovery across hosts" 10 bash -c "$(declare -f cli alive_count); BIN=$BIN GROUP=$GROUP; for i in 1 2 3 4; do alive_count \$i 4 || exit 1; done"
check "revoke reaches every host" 5 bash -c "$(declare -f cli); BIN=$BIN GROUP=$GROUP; cli 1 revoke lan-id-1 | grep -c lan >/dev/null; for i in 1 2 3 4; do cli \$i revoked --json --to h\$i | grep -q lan-id-1 || exit 1; done"
cli 2 elect jobs >/dev/null
check "one leader for jobs" 5 bash -c "$(declare -f cli leader_of same_leader); BIN=$BIN GROUP=$GROUP; same_leader 1 2 3 4"

kill -TERM "${PIDS[4]}"; wait "${PIDS[4]}" 2>/dev/null
check "clean stop seen as left" 5 bash -c "$(declare -f cli status_of); BIN=$BIN GROUP=$GROUP; status_of 1 h4 left && status_of 2 h4 left"
start 4
check "restarted host rejoins" 10 bash -c "$(declare -f cli alive_count); BIN=$BIN GROUP=$GROUP; alive_count 1 4 && alive_count 4 4"

kill -9 "${PIDS[3]}"; wait "${PIDS[3]}" 2>/dev/null
check "kill -9 detected as dead" 5 bash -c "$(declare -f cli status_of); BIN=$BIN GROUP=$GROUP; status_of 1 h3 dead && status_of 2 h3 dead && status_of 4 h3 dead"
start 3
check "killed host restarts from its state" 10 bash -c "$(declare -f cli alive_count holds); BIN=$BIN GROUP=$GROUP; alive_count 1 4 && holds 3 lan-id-1"

ip -n strl-sw link set sw2 down
# The cut-off side (h2 alone) hears nobody: Lifeguard's local health slows its own verdicts up
# to 9x (it is more likely the broken one), so it may take ~20 s to call the others dead.
check "partition detected on both sides" 30 bash -c "$(declare -f cli status_of); BIN=$BIN GROUP=$GROUP; status_of 1 h2 dead && status_of 2 h1 dead"
cli 1 revoke lan-id-2 >/dev/null
cli 1 elect jobs >/dev/null
check "majority side has a leader" 5 bash -c "$(declare -f cli leader_of same_leader); BIN=$BIN GROUP=$GROUP; same_leader 1 3 4"
cli 2 elect jobs >/dev/null
check "minority side has no leader and says so (quorum)" 5 bash -c "$(declare -f cli leader_of); BIN=$BIN GROUP=$GROUP; [ \"\$(leader_of 2)\" = null ] && grep -q 'no quorum' $WORK/h2.log"

ip -n strl-sw link set sw2 up
check "views merge after healing" 15 bash -c "$(declare -f cli alive_count); BIN=$BIN GROUP=$GROUP; for i in 1 2 3 4; do alive_count \$i 4 || exit 1; done"
check "revoked sets converge after healing" 10 bash -c "$(declare -f cli holds); BIN=$BIN GROUP=$GROUP; holds 2 lan-id-2"
check "one leader per topic again" 10 bash -c "$(declare -f cli leader_of same_leader); BIN=$BIN GROUP=$GROUP; same_leader 1 2 3 4"

echo "netns: $((checks - failures)) passed, $failures failed"
[ $failures -eq 0 ]
