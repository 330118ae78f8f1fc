#!/usr/bin/env bash
# Benchmark (not a test): removing an image of many small files. berth's `rmi` renames the
# layer into storage/trash and returns; a detached `berth system delete-trash` deletes the
# tree. Compared side by side in one run with `rm -rf` of the same tree (the floor: what the
# file system costs) and `podman rmi` of the same archive (which deletes before it returns).
#
# usage: bench/removal.sh [-n FILES] [-r RUNS]
#   -n FILES   files in the image (default 100000, in directories of 1000)
#   -r RUNS    runs of each (default 3); medians are printed
# env: BERTH (default target/release/berth), PODMAN (default: on PATH; skipped if missing)
#
# What it measures, each after a `sync`:
#   berth rmi        until `berth rmi` returns (the user waits for this)
#   berth deleter    from `berth rmi`'s start until storage/trash is empty
#   rm -rf           of the same tree unpacked with tar (no berth)
#   podman rmi       until `podman rmi` returns (its store: overlay under the work directory)
set -euo pipefail

FILES=100000
RUNS=3
while getopts "n:r:h" opt; do
  case $opt in
    n) FILES=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    h) sed -n '2,18p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done

. "$(dirname "$0")/lib.sh"
need_root
need_berth
need_tools tar python3
make_work berth-bench-removal
cleanup() {
  berth_reset "$work/berth"
  [ -n "$PODMAN" ] && podman_reset "$work/podman"
  rm -rf "$work"
}
trap cleanup EXIT

progress "making a tar of $FILES files"
python3 - "$work/tree.tar" "$FILES" <<'EOF'
import io, sys, tarfile
path, n = sys.argv[1], int(sys.argv[2])
with tarfile.open(path, "w") as t:
    for d in range((n + 999) // 1000):
        info = tarfile.TarInfo(f"d{d:04}")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        t.addfile(info)
        for f in range(min(1000, n - d * 1000)):
            data = f"{d}/{f}\n".encode()
            info = tarfile.TarInfo(f"d{d:04}/f{f:04}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
EOF

ms_since() { echo $((($(now_ns) - $1) / 1000000)); }

for i in $(seq "$RUNS"); do
  progress "run $i/$RUNS: berth"
  "$BERTH" --root "$work/berth" import "$work/tree.tar" big:1 >>"$log"
  sync
  t0=$(now_ns)
  "$BERTH" --root "$work/berth" rmi big:1 >>"$log"
  ms_since "$t0" >>"$work/t-berth-rmi"
  while [ -n "$(ls -A "$work/berth/storage/trash" 2>/dev/null)" ]; do sleep 0.05; done
  ms_since "$t0" >>"$work/t-berth-deleter"

  progress "run $i/$RUNS: rm -rf"
  mkdir "$work/tree"
  tar -C "$work/tree" -xf "$work/tree.tar"
  sync
  t0=$(now_ns)
  rm -rf "$work/tree"
  ms_since "$t0" >>"$work/t-rm"

  if [ -n "$PODMAN" ]; then
    progress "run $i/$RUNS: podman"
    [ -n "${pdriver:-}" ] || podman_setup
    podman_in "$work/podman" import "$work/tree.tar" big:1 >>"$log" 2>&1
    sync
    t0=$(now_ns)
    podman_in "$work/podman" rmi big:1 >>"$log" 2>&1
    ms_since "$t0" >>"$work/t-podman-rmi"
  fi
done

m() { median "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1fx", b / a; else print "-" }'; }
echo
echo "removal of a $FILES-file image, medians of $RUNS (ms)"
printf '%-16s %10s\n' "berth rmi" "$(m berth-rmi)"
printf '%-16s %10s\n' "berth deleter" "$(m berth-deleter)"
printf '%-16s %10s\n' "rm -rf" "$(m rm)"
[ -n "$PODMAN" ] && printf '%-16s %10s\n' "podman rmi" "$(m podman-rmi)"
echo
echo "rm -rf / berth rmi: $(ratio "$(m berth-rmi)" "$(m rm)")   berth deleter / rm -rf: $(awk -v a="$(m berth-deleter)" -v b="$(m rm)" 'BEGIN { printf "%.2f", a / b }')"
[ -n "$PODMAN" ] && echo "podman rmi / berth rmi: $(ratio "$(m berth-rmi)" "$(m podman-rmi)")"
exit 0
