#!/usr/bin/env bash
# Install the real tools the tests check kiln's images with (Debian packages):
# skopeo, umoci, podman + runc, docker-registry, a static busybox, file,
# openssl and htpasswd (apache2-utils) for the TLS and token registries, and
# tmux, a real terminal for the progress-bar tests, iproute2 + util-linux
# (ip, unshare, nsenter) for the tests that run inside a network namespace,
# tinyproxy, a real CONNECT proxy for the HTTPS_PROXY / NO_PROXY tests, grpck
# and chage (passwd) to check the account files kiln writes, and getcap (libcap2-bin)
# to read the file capabilities it sets.
set -euo pipefail

# --- PyPI: SBOM validators (tests/it/sbom.rs) ----------------------------
# spdx-tools (pyspdxtools) and cyclonedx-python-lib's JSON schema validator,
# in a venv the tests look for at $KILN_TEST_VENV (default below).
sbom_venv="${KILN_TEST_VENV:-$HOME/.cache/kiln-test-tools/venv}"
if ! { [ -x "$sbom_venv/bin/pyspdxtools" ] &&
  "$sbom_venv/bin/python" -c 'import cyclonedx.validation.json, jsonschema' 2>/dev/null; }; then
  echo "installing spdx-tools and cyclonedx-python-lib into $sbom_venv" >&2
  python3 -m venv "$sbom_venv" || {
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    ${SUDO:-} apt-get install -y -q python3-venv && python3 -m venv "$sbom_venv"
  }
  "$sbom_venv/bin/pip" install -q spdx-tools 'cyclonedx-python-lib[json-validation]'
fi
# --------------------------------------------------------------------------

need=()
for tool in skopeo umoci podman runc docker-registry file openssl htpasswd tmux ip unshare nsenter tinyproxy grpck getcap; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || need+=("$tool")
done
file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || need+=(busybox-static)
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing: ${need[*]}" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
  skopeo umoci podman runc docker-registry busybox-static file uidmap ca-certificates \
  apache2-utils openssl tmux iproute2 util-linux tinyproxy passwd libcap2-bin
