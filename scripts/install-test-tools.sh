#!/usr/bin/env bash
# Install the real tools the tests check kiln's images with (Debian packages):
# skopeo, umoci, podman + runc, docker-registry, a static busybox, file,
# openssl and htpasswd (apache2-utils) for the TLS and token registries, and
# tmux, a real terminal for the progress-bar tests, iproute2 + util-linux
# (ip, unshare, nsenter) for the tests that run inside a network namespace,
# tinyproxy, a real CONNECT proxy for the HTTPS_PROXY / NO_PROXY tests, grpck
# and chage (passwd) to check the account files kiln writes, and getcap (libcap2-bin)
# to read the file capabilities it sets, and qemu-user, to run kiln as other
# x86-64 CPUs and show its layers' bytes do not depend on the CPU.
set -euo pipefail

# ---- Python apps on a real Debian base (tests/it/python_apps.rs) ----
# debootstrap makes the base (cached in ~/.cache/kiln-tests), /usr/bin/python3
# is the interpreter uv names in the scripts it installs, uv installs the
# apps' wheels for the image's platform.
py_need=()
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || py_need+=(debootstrap)
[ -x /usr/bin/python3 ] || py_need+=(python3)
command -v uv >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 || py_need+=(python3-pip)
if [ ${#py_need[@]} -gt 0 ]; then
  S=""; [ "$(id -u)" = 0 ] || S="sudo"
  $S apt-get update -q
  DEBIAN_FRONTEND=noninteractive $S apt-get install -y -q "${py_need[@]}"
fi
if ! command -v uv >/dev/null 2>&1; then
  # Debian 12's pip refuses to install outside a venv (PEP 668) unless told to.
  python3 -m pip install --quiet uv 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages uv
fi
# ---- end of the Python apps block ----

# --- PyPI: SBOM validators (tests/it/sbom.rs) ----------------------------
# spdx-tools (pyspdxtools) and cyclonedx-python-lib's JSON schema validator,
# in a venv the tests look for at $KILN_TEST_VENV (default below).
sbom_venv="${KILN_TEST_VENV:-$HOME/.cache/kiln-test-tools/venv}"
if ! { [ -x "$sbom_venv/bin/pyspdxtools" ] &&
  "$sbom_venv/bin/python" -c 'import cyclonedx.validation.json, jsonschema' 2>/dev/null; }; then
  echo "installing spdx-tools and cyclonedx-python-lib into $sbom_venv" >&2
  python3 -m venv "$sbom_venv" || {
    S=""; [ "$(id -u)" = 0 ] || S="sudo"
    DEBIAN_FRONTEND=noninteractive $S apt-get install -y -q python3-venv
    python3 -m venv "$sbom_venv"
  }
  "$sbom_venv/bin/pip" install -q spdx-tools 'cyclonedx-python-lib[json-validation]'
fi
# --------------------------------------------------------------------------

need=()
for tool in skopeo umoci podman runc docker-registry file openssl htpasswd tmux ip unshare nsenter tinyproxy grpck getcap qemu-x86_64; do
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
  apache2-utils openssl tmux iproute2 util-linux tinyproxy passwd libcap2-bin qemu-user
