#!/usr/bin/env bash
# Installs what Glimpse needs to build, run and test on a Debian machine, idempotently:
#   - Debian packages: libturbojpeg (JPEG fast path), exiftool/qrencode/zbar/imagemagick (test fixtures)
#   - ONNX Runtime's shared library, from the npm package onnxruntime-node (npm pack, never npm install)
#   - real test photos from Debian packages (python3-skimage, darknet) under .deps/testdata
# Everything lands under .deps/ (git-ignored). Run it again at any time; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS=${GLIMPSE_DEPS:-$PWD/.deps}
ORT_VERSION=1.24.1
mkdir -p "$DEPS"

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

apt_pkgs=(libturbojpeg0-dev libimage-exiftool-perl qrencode zbar-tools imagemagick)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

ort="$DEPS/onnxruntime/libonnxruntime.so.1"
if [ ! -s "$ort" ]; then
  log "fetching ONNX Runtime $ORT_VERSION (npm pack onnxruntime-node@$ORT_VERSION)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null 2>&1 \
     && tar xzf "onnxruntime-node-$ORT_VERSION.tgz" package/bin/napi-v6/linux/x64/libonnxruntime.so.1)
  mkdir -p "$DEPS/onnxruntime"
  mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ort.tmp" && mv "$ort.tmp" "$ort"
  rm -rf "$tmp"
fi

photos="$DEPS/testdata"
if [ ! -s "$photos/chelsea.png" ] || [ ! -s "$photos/dog.jpg" ]; then
  log "extracting test photos from Debian packages (python3-skimage, darknet)"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download python3-skimage darknet >/dev/null 2>&1 || { apt-get update -qq && apt-get download python3-skimage darknet >/dev/null; })
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
  mkdir -p "$photos"
  sk=$(find "$tmp/x" -type d -path '*skimage/data' | head -n1)
  for f in chelsea.png coffee.png astronaut.png rocket.jpg motorcycle_left.png hubble_deep_field.jpg; do
    [ -f "$sk/$f" ] && cp "$sk/$f" "$photos/"
  done
  for f in dog eagle giraffe horses kite person scream; do
    [ -f "$tmp/x/usr/share/darknet/data/$f.jpg" ] && cp "$tmp/x/usr/share/darknet/data/$f.jpg" "$photos/"
  done
  rm -rf "$tmp"
fi
log "ready: $ort, photos in $photos"

# --- versitygw: a real S3 server for the blob tests (s3:// backend) -------------------------------
# Built from the module proxy into $DEPS/bin (about 2.5 min the first time); the tests find it there.
VERSITYGW_VERSION=v1.8.0
if [ ! -x "$DEPS/bin/versitygw" ]; then
  log "building versitygw $VERSITYGW_VERSION into $DEPS/bin (go install; takes a few minutes once)"
  mkdir -p "$DEPS/bin"
  GOBIN="$(cd "$DEPS/bin" && pwd)" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi
# --- end versitygw ------------------------------------------------------------------------------------

# --- nats-server for the cluster tests (e2e/cluster_test.go, e2e/split_test.go) ---
# Debian's nats-server is too old for them; build the pinned release from the Go module proxy.
NATS_SERVER_VERSION=v2.15.2
if ! "$DEPS/bin/nats-server" --version 2>/dev/null | grep -qx "nats-server: $NATS_SERVER_VERSION"; then
  log "building nats-server $NATS_SERVER_VERSION into $DEPS/bin (go install)"
  mkdir -p "$DEPS/bin"
  GOBIN="$DEPS/bin" go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
fi
# --- end nats-server ---

# --- chromium: the browser of the web UI's end-to-end tests (e2e/ui_test.go, chromedp) -------------
if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian package: chromium (browser tests)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }
fi
# --- end chromium ----------------------------------------------------------------------------------
