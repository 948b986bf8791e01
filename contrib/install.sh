#!/usr/bin/env bash
# Installs Starling as a systemd service: the binary to $PREFIX/bin, the unit to
# /etc/systemd/system, the sample settings to /etc/starling/starling.env (only if absent, so an
# edited file is never overwritten), and the `starling` system user. It never starts, enables
# or reloads anything: the commands to do so are printed at the end.
#
#   swift build -c release
#   sudo contrib/install.sh                  # PREFIX=/usr/local
#   sudo PREFIX=/usr contrib/install.sh
#   DESTDIR=/tmp/stage contrib/install.sh    # into a staging root (packaging); no user created
#   contrib/install.sh --dry-run             # print what would be done, change nothing
set -euo pipefail

usage() {
    cat <<'EOF'
usage: contrib/install.sh [--dry-run] [--binary PATH]
  --dry-run      print each step instead of doing it
  --binary PATH  the starling executable (default: .build/release/starling)
environment:
  PREFIX   where the binary goes, as $PREFIX/bin/starling (default: /usr/local)
  DESTDIR  a staging root put before every path; the user is then not created, a
           sysusers.d entry creates it when the staged files are installed
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
binary="$root/.build/release/starling"
dry_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --binary)
            [ $# -ge 2 ] || { usage >&2; exit 2; }
            binary="$2"
            shift ;;
        --binary=*) binary="${1#--binary=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

prefix="${PREFIX:-/usr/local}"
destdir="${DESTDIR:-}"
case "$prefix" in
    /*) ;;
    *) echo "install.sh: PREFIX must be an absolute path, not '$prefix'" >&2; exit 2 ;;
esac
# The unit names the binary by its path; a space or a character special to sed would break it.
case "$prefix" in
    *[!A-Za-z0-9/._-]*) echo "install.sh: PREFIX may hold only letters, digits and / . _ -" >&2; exit 2 ;;
esac
prefix="${prefix%/}"
destdir="${destdir%/}"

if [ ! -x "$binary" ]; then
    echo "install.sh: no executable at $binary; build it first: swift build -c release" >&2
    exit 1
fi
if [ "$dry_run" = 0 ] && [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root to install into /, or use DESTDIR=... or --dry-run" >&2
    exit 1
fi

# Runs a command, or prints it with --dry-run.
run() {
    if [ "$dry_run" = 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

bin_path="$prefix/bin/starling"
unit_dir="$destdir/etc/systemd/system"
config_dir="$destdir/etc/starling"

echo "installing $binary as $destdir$bin_path"
run install -D -m 0755 "$binary" "$destdir$bin_path"

echo "installing the unit as $unit_dir/starling.service (ExecStart=$bin_path ...)"
run install -d -m 0755 "$unit_dir"
if [ "$dry_run" = 1 ]; then
    echo "+ sed 's|/usr/local/bin/starling|$bin_path|' $here/starling.service > $unit_dir/starling.service"
else
    unit="$(mktemp)"
    trap 'rm -f "$unit"' EXIT
    sed "s|/usr/local/bin/starling|$bin_path|g" "$here/starling.service" > "$unit"
    if [ -e "$unit_dir/starling.service" ] && ! cmp -s "$unit" "$unit_dir/starling.service"; then
        # An edited unit is the operator's: never overwritten (local changes belong in
        # `systemctl edit starling`, which survives reinstalls).
        install -m 0644 "$unit" "$unit_dir/starling.service.new"
        echo "kept the existing, different $unit_dir/starling.service; the new one is starling.service.new"
    else
        install -m 0644 "$unit" "$unit_dir/starling.service"
    fi
fi

# An existing configuration directory keeps its mode (an operator may have tightened it).
if [ -d "$config_dir" ]; then echo "keeping the existing $config_dir"; else run install -d -m 0755 "$config_dir"; fi
if [ -e "$config_dir/starling.env" ]; then
    echo "keeping the existing $config_dir/starling.env"
else
    echo "installing the sample settings as $config_dir/starling.env"
    run install -m 0644 "$here/starling.env" "$config_dir/starling.env"
fi

# The user: a system account without a shell or a home of its own (its state directory is
# created by systemd, StateDirectory=). A sysusers.d entry keeps it declared for the system.
run install -d -m 0755 "$destdir/usr/lib/sysusers.d"
if [ "$dry_run" = 1 ]; then
    echo "+ printf 'u starling - \"Starling cluster agent\" /var/lib/starling\\n' > $destdir/usr/lib/sysusers.d/starling.conf"
else
    printf 'u starling - "Starling cluster agent" /var/lib/starling\n' > "$destdir/usr/lib/sysusers.d/starling.conf"
    chmod 0644 "$destdir/usr/lib/sysusers.d/starling.conf"
fi
if [ -n "$destdir" ]; then
    echo "DESTDIR set: the starling user is not created here (usr/lib/sysusers.d/starling.conf declares it)"
elif id starling >/dev/null 2>&1; then
    echo "the starling user exists"
else
    nologin="$(command -v nologin || echo /usr/sbin/nologin)"
    echo "creating the starling system user"
    run useradd --system --user-group --no-create-home --home-dir /var/lib/starling \
        --shell "$nologin" --comment "Starling cluster agent" starling
fi

if [ "$dry_run" = 1 ]; then
    echo; echo "Dry run: nothing was changed."
    exit 0
fi
cat <<EOF

Installed. Nothing was started. Next:
  edit /etc/starling/starling.env (STARLING_INTERFACE, STARLING_GROUP, STARLING_KEY_FILE)
  systemctl daemon-reload
  systemctl enable --now starling
  systemctl status starling     # "Status: synced with N other nodes" once ready
  journalctl -u starling
EOF
