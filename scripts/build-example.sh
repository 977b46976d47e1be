#!/usr/bin/env bash
# Build the example image in specs/web: a static busybox web server on scratch.
# Writes the OCI layout to kiln-out/web and a docker-archive to kiln-out/web.tar.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /bin/busybox ] || ! file -L /bin/busybox 2>/dev/null | grep -q static; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static file
  else
    echo "error: a static busybox is needed: sudo apt-get install busybox-static" >&2
    exit 1
  fi
fi
mkdir -p specs/web/bin
cp /bin/busybox specs/web/bin/busybox

echo "building kiln (cargo build --release; a few minutes on a fresh machine)" >&2
cargo build --release
./target/release/kiln build specs/web/kiln.toml --oci kiln-out/web --tar kiln-out/web.tar --digest-file kiln-out/web.digest "$@"
