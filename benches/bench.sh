#!/usr/bin/env bash
# kiln against buildah and a reference pipeline on the same machine, in the
# same run, alternating; medians over RUNS runs.
#   benches/bench.sh [RUNS] [PARTS]   (default 5 runs, every part; push needs root for buildah)
# PARTS, comma-separated:
#   push   W1-W5: build + push to a local docker-registry, against buildah
#   w6     W6: a warm rebuild with nothing changed on a local base of 60 MB / 10,000 files
#          and of 600 MB / 100,000 files, with the base index and with it removed (the
#          cost of reading every base layer, which every build paid before the index),
#          and the index's load time on the 600 MB base
#   build  W1 build-only against `tar | igzip -1 -T 2 | sha256sum` with a second sha256 over the tar
# Workloads (benches/workloads.py makes them from real files in /usr):
#   W1 200 MB mixed, cold cache    W2 20,000 x 4 KiB files    W3 W1 unchanged (warm)
#   W4 one 1 GiB layer: peak RSS   W5 W1 with zstd (OCI format)
set -euo pipefail
RUNS=${1:-5}
PARTS=${2:-push,w6,build}
part() { [[ ",$PARTS," == *",$1,"* ]]; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${KILN_BENCH_DIR:-/tmp/kiln-bench}
mkdir -p "$WORK"

need=(python3)
part push && need+=(buildah docker-registry)
part build && need+=(igzip)
for tool in "${need[@]}"; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install buildah docker-registry isal time)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

# KILN=PATH runs a binary built elsewhere (e.g. with --features isal) instead.
[ -n "${KILN:-}" ] || (cd "$ROOT" && cargo build --release --quiet)
KILN=${KILN:-$ROOT/target/release/kiln}
python3 "$ROOT/benches/workloads.py" "$WORK"

spec() { # DIR NAME FILE [extra [image] lines]
  cat > "$WORK/$1/${3:-kiln.toml}" <<TOML
[image]
name = "$2"
$4
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
spec w1 w1 "" ""
spec w2 w2 "" ""
spec w4 w4 "" ""
# W5 is W1's tree under a second spec.
spec w1 w1 zstd.toml 'format = "oci"
compression = "zstd"'

RESULTS=$WORK/results.tsv
: > "$RESULTS"
# measure LABEL CMD...: wall seconds and peak RSS (KiB) into results
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.out" "$@" > /dev/null 2> "$WORK/cmd.err" || { cat "$WORK/cmd.err" >&2; exit 1; }
  echo -e "$label\t$(tr ' ' '\t' < "$WORK/time.out")" >> "$RESULTS"
}

CLEANUP=()
cleanup() { local c; for c in "${CLEANUP[@]}"; do eval "$c"; done; }
trap cleanup EXIT

push_part() {
  # A registry of our own on loopback.
  local port data
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REG=127.0.0.1:$port
  # Registry storage on tmpfs where there is one, so disk noise does not decide the race.
  data=$WORK/registry/data
  [ -d /dev/shm ] && data=$(mktemp -d /dev/shm/kiln-bench-registry.XXXXXX)
  rm -rf "$WORK/registry"; mkdir -p "$WORK/registry"
  cat > "$WORK/registry/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $data}}
http: {addr: $REG}
YML
  docker-registry serve "$WORK/registry/config.yml" > "$WORK/registry/log" 2>&1 &
  local reg_pid=$!
  BUILDAH=(buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver overlay)
  CLEANUP+=("kill $reg_pid 2>/dev/null || true" "${BUILDAH[*]} rm --all >/dev/null 2>&1 || true" "rm -rf '$data'")
  until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null; do sleep 0.1; done

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
  export KILN WORK REG; local buildah_cmd="${BUILDAH[*]}"

  for run in $(seq 1 "$RUNS"); do
    echo "run $run/$RUNS" >&2
    # Cold means cold: no cache left by an earlier, interrupted bench.
    rm -rf "$WORK"/cache-*-"$run" "$WORK"/cache-*-"$run"-zstd
    measure "W1 kiln" bash -c "$(declare -f kiln_push); kiln_push w1 $run"
    measure "W1 buildah" bash -c "BUILDAH=($buildah_cmd); $(declare -f buildah_push); buildah_push w1 $run"
    measure "W2 kiln" bash -c "$(declare -f kiln_push); kiln_push w2 $run"
    measure "W2 buildah" bash -c "BUILDAH=($buildah_cmd); $(declare -f buildah_push); buildah_push w2 $run"
    # W3: the W1 build of this run again, same cache, same repository.
    measure "W3 kiln" bash -c "$(declare -f kiln_push); kiln_push w1 $run"
    measure "W5 kiln" bash -c "$(declare -f kiln_push); kiln_push w1 $run zstd.toml"
    rm -rf "$WORK"/cache-*-"$run" "$WORK"/cache-*-"$run"-zstd
  done
  measure "W4 kiln" "$KILN" -q build "$WORK/w4/kiln.toml" --oci "$WORK/w4/out" --no-cache
  rm -rf "$WORK/w4/out"
}

# W6: each base built once into an OCI layout by kiln itself (scratch + the tree),
# then a small app on it, built once cold; the timed builds are warm.
w6_part() {
  local size dir run
  for size in 60 600; do
    dir=$WORK/w6/$size
    mkdir -p "$dir/dist"
    if [ ! -d "$dir/base" ]; then
      printf '[image]\nname = "w6-base-%s"\n[[copy]]\nsrc = "base-%s/"\ndest = "/"\n' "$size" "$size" > "$WORK/w6/base-$size.toml"
      "$KILN" -q build "$WORK/w6/base-$size.toml" --oci "$dir/base" --no-cache --no-check --cache-dir "$WORK/w6/cache-base" > /dev/null
    fi
    head -c 1000000 "$KILN" > "$dir/dist/server"
    spec "w6/$size" "w6-$size" "" 'base = "oci:base"'
    rm -rf "$WORK/w6/cache-$size"
    "$KILN" -q build "$dir/kiln.toml" --oci "$dir/out" --cache-dir "$WORK/w6/cache-$size" > /dev/null
  done
  for run in $(seq 1 "$RUNS"); do
    echo "W6 run $run/$RUNS" >&2
    for size in 60 600; do
      dir=$WORK/w6/$size
      measure "W6-$size index" "$KILN" -q build "$dir/kiln.toml" --oci "$dir/out" --cache-dir "$WORK/w6/cache-$size"
      rm -rf "$WORK/w6/cache-$size/base-index"
      measure "W6-$size layers" "$KILN" -q build "$dir/kiln.toml" --oci "$dir/out" --cache-dir "$WORK/w6/cache-$size"
    done
  done
  # The index's own load time (sealed read, digest, decode), as kiln logs it.
  for run in $(seq 1 "$RUNS"); do
    "$KILN" -v build "$WORK/w6/600/kiln.toml" --oci "$WORK/w6/600/out" --cache-dir "$WORK/w6/cache-600" 2>&1 >/dev/null \
      | sed -n 's/.*base index loaded in \([0-9.]*\) ms.*/\1/p' \
      | while read -r ms; do echo -e "W6-600 index-load-ms\t$ms\t0" >> "$RESULTS"; done
  done
}

# W1 build-only against a pipeline doing the same work with ISA-L's igzip.
build_part() {
  local run
  for run in $(seq 1 "$RUNS"); do
    echo "W1 build-only run $run/$RUNS" >&2
    measure "W1b kiln" "$KILN" -q build "$WORK/w1/kiln.toml" --oci "$WORK/w1/out" --no-cache
    measure "W1b reference" bash -c "tar -C '$WORK/w1/dist' --sort=name -cf - . | tee >(sha256sum > /dev/null) | igzip -1 -T 2 -c | sha256sum > /dev/null"
  done
  rm -rf "$WORK/w1/out"
}

part push && push_part
part w6 && w6_part
part build && build_part

python3 - "$RESULTS" <<'PY'
import statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, secs, rss = line.rstrip("\n").split("\t")
    rows[label].append((float(secs), int(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
rss = {k: max(r for _, r in v) / 1024 for k, v in rows.items()}
print("| workload | kiln (median s) | peer (median s) | ratio | target |")
print("|---|---|---|---|---|")
if "W1 kiln" in med:
    for w, target in [("W1", "<= 0.12"), ("W2", "<= 0.15")]:
        print(f"| {w} build+push vs buildah | {med[w+' kiln']:.2f} | {med[w+' buildah']:.2f} | {med[w+' kiln']/med[w+' buildah']:.3f} | {target} |")
    print(f"| W3 unchanged rebuild+push | {med['W3 kiln']:.3f} | | | < 0.15 s |")
    print(f"| W5 zstd build+push | {med['W5 kiln']:.2f} | | {med['W5 kiln']/med['W1 kiln']:.2f} x kiln gzip | <= 0.7 |")
    print(f"| W4 1 GiB layer, peak RSS | {rss['W4 kiln']:.0f} MiB ({med['W4 kiln']:.1f} s) | | | <= 48 MiB |")
for size, target in [("60", "<= 0.1 s"), ("600", "<= 0.15 s")]:
    if f"W6-{size} index" in med:
        a, b = med[f"W6-{size} index"], med[f"W6-{size} layers"]
        print(f"| W6 warm rebuild, {size} MB base: index / layers read | {a:.3f} | {b:.3f} | {a/b:.2f} | {target} |")
if "W6-600 index-load-ms" in med:
    print(f"| W6 base index load, 600 MB base | {med['W6-600 index-load-ms']:.1f} ms | | | < 20 ms |")
if "W1b kiln" in med:
    a, b = med["W1b kiln"], med["W1b reference"]
    print(f"| W1 build-only vs tar, igzip -1 -T 2, sha256 x2 | {a:.2f} | {b:.2f} | {a/b:.2f} | <= 1.3 |")
if "W1 kiln" in med:
    print(f"\n(kiln peak RSS on W1: {rss['W1 kiln']:.0f} MiB; buildah: {rss['W1 buildah']:.0f} MiB; runs: {len(rows['W1 kiln'])})")
PY
