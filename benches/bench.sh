#!/usr/bin/env bash
# kiln against buildah on the same machine, in the same run, alternating:
# build + push to a local docker-registry, medians over RUNS runs.
#   benches/bench.sh [RUNS]      (default 5; needs root for buildah)
# Workloads (benches/workloads.py makes them from real files in /usr):
#   W1 200 MB mixed, cold cache    W2 20,000 x 4 KiB files    W3 W1 unchanged (warm)
#   W4 one 1 GiB layer: peak RSS   W5 W1 with zstd (OCI format)
set -euo pipefail
RUNS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${KILN_BENCH_DIR:-/tmp/kiln-bench}
mkdir -p "$WORK"

for tool in buildah docker-registry python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install buildah docker-registry time)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

(cd "$ROOT" && cargo build --release --quiet)
KILN=$ROOT/target/release/kiln
python3 "$ROOT/benches/workloads.py" "$WORK"

# A registry of our own on loopback.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
# Registry storage on tmpfs where there is one, so disk noise does not decide the race.
DATA=$WORK/registry/data
[ -d /dev/shm ] && DATA=$(mktemp -d /dev/shm/kiln-bench-registry.XXXXXX)
rm -rf "$WORK/registry"; mkdir -p "$WORK/registry"
cat > "$WORK/registry/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $DATA}}
http: {addr: $REG}
YML
docker-registry serve "$WORK/registry/config.yml" > "$WORK/registry/log" 2>&1 &
REG_PID=$!
BUILDAH=(buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver overlay)
cleanup() { kill "$REG_PID" 2>/dev/null || true; "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true; rm -rf "$DATA"; }
trap cleanup EXIT
until python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT))" 2>/dev/null; do sleep 0.1; done

spec() { # NAME FILE [extra [image] lines]
  cat > "$WORK/$1/${2:-kiln.toml}" <<TOML
[image]
name = "$1"
$3
[user]
name = "app"
uid = 10001
[[copy]]
src = "dist/"
dest = "/app/"
owner = "10001:10001"
[config]
entrypoint = ["/app/server"]
[healthcheck]
test = ["CMD", "/app/server", "--health"]
[policy]
allow = ["KILN-HEALTHCHECK-NOT-IN-IMAGE", "KILN-ENTRYPOINT-NOT-IN-IMAGE"]
reason = "a benchmark workload: the files stand in for a server"
TOML
}
spec w1 "" ""
spec w2 "" ""
spec w4 "" ""
# W5 is W1's tree under a second spec.
spec w1 zstd.toml 'format = "oci"
compression = "zstd"'

RESULTS=$WORK/results.tsv
: > "$RESULTS"
# measure LABEL CMD...: wall seconds and peak RSS (KiB) into results
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.out" "$@" > /dev/null 2> "$WORK/cmd.err" || { cat "$WORK/cmd.err" >&2; exit 1; }
  echo -e "$label\t$(cat "$WORK/time.out" | tr ' ' '\t')" >> "$RESULTS"
}
kiln_push() { # WORKLOAD RUN [SPEC FILE]
  "$KILN" -q build "$WORK/$1/${3:-kiln.toml}" --push "$REG/bench/$1-kiln-$2${3:+-zstd}:1" --cache-dir "$WORK/cache-$1-$2${3:+-zstd}"
}
buildah_push() { # WORKLOAD RUN
  local ctr
  ctr=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" copy --quiet --chown 10001:10001 "$ctr" "$WORK/$1/dist" /app/ >/dev/null
  "${BUILDAH[@]}" config --user 10001:10001 --healthcheck 'CMD /app/server --health' "$ctr"
  "${BUILDAH[@]}" commit --quiet --format docker "$ctr" "bench-$1-$2" >/dev/null
  "${BUILDAH[@]}" push --quiet --tls-verify=false "bench-$1-$2" "docker://$REG/bench/$1-buildah-$2:1"
  "${BUILDAH[@]}" rm "$ctr" >/dev/null; "${BUILDAH[@]}" rmi --force "bench-$1-$2" >/dev/null
}
export -f buildah_push kiln_push; export KILN WORK REG; export BUILDAH_CMD="${BUILDAH[*]}"

for run in $(seq 1 "$RUNS"); do
  echo "run $run/$RUNS" >&2
  measure "W1 kiln" bash -c "$(declare -f kiln_push); kiln_push w1 $run"
  measure "W1 buildah" bash -c "BUILDAH=($BUILDAH_CMD); $(declare -f buildah_push); buildah_push w1 $run"
  measure "W2 kiln" bash -c "$(declare -f kiln_push); kiln_push w2 $run"
  measure "W2 buildah" bash -c "BUILDAH=($BUILDAH_CMD); $(declare -f buildah_push); buildah_push w2 $run"
  # W3: the W1 build of this run again, same cache, same repository.
  measure "W3 kiln" bash -c "$(declare -f kiln_push); kiln_push w1 $run"
  measure "W5 kiln" bash -c "$(declare -f kiln_push); kiln_push w1 $run zstd.toml"
  rm -rf "$WORK"/cache-*-"$run" "$WORK"/cache-*-"$run"-zstd
done
measure "W4 kiln" "$KILN" -q build "$WORK/w4/kiln.toml" --oci "$WORK/w4/out" --no-cache
rm -rf "$WORK/w4/out"

python3 - "$RESULTS" <<'PY'
import statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, secs, rss = line.rstrip("\n").split("\t")
    rows[label].append((float(secs), int(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
rss = {k: max(r for _, r in v) / 1024 for k, v in rows.items()}
print("| workload | kiln (median s) | buildah (median s) | kiln/buildah | target |")
print("|---|---|---|---|---|")
for w, target in [("W1", "<= 0.12"), ("W2", "<= 0.15")]:
    print(f"| {w} build+push | {med[w+' kiln']:.2f} | {med[w+' buildah']:.2f} | {med[w+' kiln']/med[w+' buildah']:.3f} | {target} |")
print(f"| W3 unchanged rebuild+push | {med['W3 kiln']:.3f} | | | < 0.15 s |")
print(f"| W5 zstd build+push | {med['W5 kiln']:.2f} | | {med['W5 kiln']/med['W1 kiln']:.2f} x kiln gzip | <= 0.7 |")
print(f"| W4 1 GiB layer, peak RSS | {rss['W4 kiln']:.0f} MiB ({med['W4 kiln']:.1f} s) | | | <= 48 MiB |")
print(f"\n(kiln peak RSS on W1: {rss['W1 kiln']:.0f} MiB; buildah: {rss['W1 buildah']:.0f} MiB; runs: {len(rows['W1 kiln'])})")
PY
