#!/usr/bin/env bash
# Checks contrib/ without touching the system (CI runs it): install.sh --dry-run, an install
# into a temporary DESTDIR with PREFIX=/usr, a second one that keeps an edited settings file,
# and `systemd-analyze verify` of the unit when systemd-analyze is installed.
#   contrib/check.sh [.build/release/starling]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
given="${1:-$here/../.build/release/starling}"
binary="$(cd "$(dirname "$given")" && pwd)/$(basename "$given")"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
fail() { echo "contrib check: $*" >&2; exit 1; }

bash -n "$here/install.sh"
"$here/install.sh" --dry-run --binary "$binary" > "$stage/dry-run.txt"
grep -q "Dry run: nothing was changed" "$stage/dry-run.txt" || fail "no dry-run summary"

DESTDIR="$stage/root" PREFIX=/usr "$here/install.sh" --binary "$binary" > /dev/null
for file in usr/bin/starling etc/systemd/system/starling.service etc/starling/starling.env usr/lib/sysusers.d/starling.conf; do
    [ -f "$stage/root/$file" ] || fail "$file not installed"
done
grep -q '^ExecStart=/usr/bin/starling agent ' "$stage/root/etc/systemd/system/starling.service" || fail "ExecStart does not follow PREFIX"
echo "# edited" >> "$stage/root/etc/starling/starling.env"
DESTDIR="$stage/root" PREFIX=/usr "$here/install.sh" --binary "$binary" > /dev/null
grep -q "^# edited" "$stage/root/etc/starling/starling.env" || fail "an existing starling.env was overwritten"

if command -v systemd-analyze > /dev/null 2>&1; then
    # verify wants ExecStart's binary on this host: point it at the built one.
    sed "s|/usr/local/bin/starling|$binary|" "$here/starling.service" > "$stage/starling.service"
    # A misspelt directive is only a warning to verify: any output at all fails the check.
    output="$(cd "$stage" && systemd-analyze verify "$stage/starling.service" 2>&1)" || fail "systemd-analyze verify failed: $output"
    [ -z "$output" ] || fail "systemd-analyze verify: $output"
    echo "contrib: install.sh and starling.service checked (systemd-analyze verify passed)"
else
    echo "contrib: install.sh checked; systemd-analyze is not installed, the unit was not verified"
fi
