#!/usr/bin/env bash
# Installs arpgnet-edge on a Jetson (JetPack 6) as services that come back by themselves.
#
#   sudo ./install.sh [--kiosk] [--csi] [--image arpgnet-edge:jp6.2] [--config jetson-orin.json] [--power-mode N]
#   ./install.sh --render DIR [...]     # only write the rendered units to DIR (used by the tests)
#
# Steps: check the platform, set the power mode, create the user and folders, put the
# config and helper in place, build the TensorRT engines once (`models warmup`), install
# and verify the units, enable and start them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=arpgnet-edge:jp6.2
config=jetson-orin.json
kiosk=0
csi=0
render=
power_mode=
user=arpgnet
chromium=${CHROMIUM:-/snap/bin/chromium}
while [ $# -gt 0 ]; do
  case $1 in
    --kiosk) kiosk=1; config=jetson-kiosk.json ;;
    --csi) csi=1 ;;
    --image) image=$2; shift ;;
    --config) config=$2; shift ;;
    --power-mode) power_mode=$2; shift ;;
    --user) user=$2; shift ;;
    --render) render=$2; shift ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
camera_unit=dev-video0.device
[ "$csi" = 1 ] && camera_unit=arpgnet-csi-camera.service

render_units() {
  local out=$1
  mkdir -p "$out"
  local units=(arpgnet-edge.service arpgnet-edge-watchdog.service arpgnet-edge-watchdog.timer)
  [ "$kiosk" = 1 ] && units+=(arpgnet-kiosk.service)
  [ "$csi" = 1 ] && units+=(arpgnet-csi-camera.service)
  for u in "${units[@]}"; do
    sed -e "s#@IMAGE@#$image#g" -e "s#@CONFIG@#/etc/arpgnet-edge/config.json#g" -e "s#@CHROMIUM@#$chromium#g" \
      -e "s#@USER@#$user#g" -e "s#@CAMERA_UNIT@#$camera_unit#g" "$here/systemd/$u" > "$out/$u"
  done
  printf '%s\n' "${units[@]}"
}

if [ -n "$render" ]; then render_units "$render" >/dev/null; exit 0; fi

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
if [ -f /etc/nv_tegra_release ]; then
  echo "platform: $(head -1 /etc/nv_tegra_release)"
  grep -q 'R36' /etc/nv_tegra_release || echo "warning: built for JetPack 6 (L4T r36); this is $(head -1 /etc/nv_tegra_release)" >&2
else
  echo "warning: not a Jetson (no /etc/nv_tegra_release); continuing" >&2
fi
# power mode: MAXN gives the figures in README.md; lower modes trade fps for watts
if [ -n "$power_mode" ] && command -v nvpmodel >/dev/null; then nvpmodel -m "$power_mode"; fi
command -v docker >/dev/null || { echo "install.sh: docker is missing (apt install nvidia-container-toolkit docker.io)" >&2; exit 1; }
docker image inspect "$image" >/dev/null 2>&1 || { echo "install.sh: image $image not found; build it (README.md, step 2) or docker load it" >&2; exit 1; }

id "$user" >/dev/null 2>&1 || useradd --system --create-home --groups video "$user"
install -d -m 0755 /opt/arpgnet-edge /etc/arpgnet-edge
install -d -m 0775 -o "$user" /var/cache/arpgnet-edge /var/cache/arpgnet-edge/trt /var/lib/arpgnet-kiosk
install -m 0755 "$here/wait-healthy.sh" /opt/arpgnet-edge/wait-healthy.sh
install -m 0644 "$here/README.md" /opt/arpgnet-edge/README.md
if [ ! -f /etc/arpgnet-edge/config.json ]; then
  install -m 0644 "$here/config/$config" /etc/arpgnet-edge/config.json
  ip=$(hostname -I | awk '{print $1}')
  [ -n "$ip" ] && sed -i "s/\"announcedAddress\": \"[^\"]*\"/\"announcedAddress\": \"$ip\"/" /etc/arpgnet-edge/config.json
fi

echo "building TensorRT engines once (first run of the model on this device)"
docker run --rm --runtime nvidia -v /etc/arpgnet-edge/config.json:/etc/arpgnet-edge/config.json:ro \
  -v /var/cache/arpgnet-edge:/var/cache/arpgnet-edge "$image" models warmup --config /etc/arpgnet-edge/config.json

tmp=$(mktemp -d)
mapfile -t units < <(render_units "$tmp")
systemd-analyze verify --man=no "${units[@]/#/$tmp/}"
for u in "${units[@]}"; do install -m 0644 "$tmp/$u" "/etc/systemd/system/$u"; done
rm -rf "$tmp"
systemctl daemon-reload
systemctl enable --now arpgnet-edge.service arpgnet-edge-watchdog.timer
[ "$csi" = 1 ] && systemctl enable --now arpgnet-csi-camera.service
[ "$kiosk" = 1 ] && systemctl enable --now arpgnet-kiosk.service
echo "installed: journalctl -u arpgnet-edge -f   (logs)   curl http://127.0.0.1:8080/healthz"
