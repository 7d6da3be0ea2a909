#!/usr/bin/env bash
# The system parts the whole test suite runs against, from Debian's packages: PostgreSQL (the store
# tests start their own throwaway cluster from its binaries; backups use pg_dump) and Chromium (the
# web chat's browser tests). Installs what is missing when this user may run apt-get; otherwise stops
# with one line saying what to install. `make test` runs this first.
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi
if ! command -v apt-get >/dev/null || [ "$sudo" = none ]; then
  echo "make test needs ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}), then run make test again" >&2
  exit 1
fi
echo "make test: installing ${missing[*]} from Debian's packages (the store and browser tests need them)"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
