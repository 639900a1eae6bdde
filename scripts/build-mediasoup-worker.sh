#!/usr/bin/env bash
# Puts a mediasoup-worker binary where the mediasoup package looks for it
# (node_modules/mediasoup/worker/out/Release/mediasoup-worker), from, in order:
#   1. the cache, keyed on the mediasoup version and the patch's hash;
#   2. mediasoup's prebuilt release download (machines with network);
#   3. a build of the worker against Debian's libraries with patches/ applied
#      (air-gapped machines, Jetson). ~8 min on 2 cores, once per version + patch.
# ARPGNET_MEDIASOUP_BUILD=source skips step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=node_modules/mediasoup
version=$(node -p "require('./$pkg/package.json').version")
patch_file=patches/mediasoup-worker-$version-debian-libs.patch
target=$pkg/worker/out/Release/mediasoup-worker
patch_hash=$( [ -f "$patch_file" ] && sha256sum "$patch_file" | cut -c1-12 || echo none)
cache_root=${ARPGNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/arpgnet-edge}
cached=$cache_root/mediasoup-worker/$version-$(uname -m)-$patch_hash/mediasoup-worker

place() {
  mkdir -p "$(dirname "$target")"
  cp "$1" "$target.tmp" && chmod +x "$target.tmp" && mv "$target.tmp" "$target"
}

if [ -x "$target" ] && [ -f "$cached" ] && cmp -s "$target" "$cached"; then exit 0; fi
if [ -f "$cached" ]; then place "$cached"; echo "mediasoup-worker $version: from cache" >&2; exit 0; fi
mkdir -p "$(dirname "$cached")"

if [ "${ARPGNET_MEDIASOUP_BUILD:-}" != source ]; then
  kernel=$(uname -r | cut -d. -f1)
  arch=$(node -p 'process.arch')
  url="https://github.com/versatica/mediasoup/releases/download/$version/mediasoup-worker-$version-linux-$arch-kernel$kernel.tgz"
  tmp=$(mktemp -d)
  if curl -fsSL --connect-timeout 5 --max-time 120 "$url" -o "$tmp/w.tgz" 2>/dev/null && tar -xzf "$tmp/w.tgz" -C "$tmp" 2>/dev/null \
    && [ -x "$tmp/mediasoup-worker" ]; then
    cp "$tmp/mediasoup-worker" "$cached"
    rm -rf "$tmp"
    place "$cached"
    echo "mediasoup-worker $version: prebuilt download" >&2
    exit 0
  fi
  rm -rf "$tmp"
  echo "mediasoup-worker $version: no prebuilt download reachable; building it against Debian's libraries" >&2
fi

[ -f "$patch_file" ] || { echo "no $patch_file for mediasoup $version: update the patch or pin the version it was made for" >&2; exit 1; }
debs=(g++ pkg-config meson ninja-build libssl-dev libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$pkg/worker" "$work/worker"
patch -d "$work/worker" -p1 --quiet < "$patch_file"
if ! (
  cd "$work/worker"
  meson setup out --buildtype release -Db_ndebug=true -Dms_disable_liburing=true --wrap-mode=nodownload
  # the generated flatbuffers headers have no build-order edge to the sources that include them
  ninja -C out fbs/FBS
  ninja -C out mediasoup-worker
) > "$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  echo "mediasoup-worker $version: the build failed (log above)" >&2
  exit 1
fi
cp "$work/worker/out/mediasoup-worker" "$cached"
place "$cached"
echo "mediasoup-worker $version: built from source ($patch_file)" >&2
