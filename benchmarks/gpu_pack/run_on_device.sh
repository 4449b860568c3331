#!/usr/bin/env bash
# The one script the device machine runs (README.md beside this): unpack the carry pack, then
# run the parts of the GPU validation, each under its own time limit, everything under $OUT.
#
#   OUT=... bash benchmarks/gpu_pack/run_on_device.sh                # on the device, with the pack
#   OUT=/tmp/out PYTHON=.venv/bin/python bash benchmarks/gpu_pack/run_on_device.sh \
#       --device cpu --tiny --no-pack --inputs /tmp/inputs          # CPU smoke run, no pack
#
# Options
#   --device cuda|cpu        (default cuda)
#   --tiny                   CPU smoke sizes (with inputs from prepare_inputs.py --tiny)
#   --parts LIST             comma-separated, from throughput,silica,dftval (default: all three)
#   --limit PART=SECONDS     time limit of a part (repeatable); defaults: env 60, throughput 120,
#                            silica 290, dftval 290 (tiny: 60, 120, 120, 120): at most ~8 min
#   --pack FILE | --no-pack  the carry pack (default benchmarks/gpu_pack/pack.tar.xz), or use the
#                            Python environment as it is (then --inputs is required)
#   --inputs DIR             prepared inputs (default: those in the pack)
#   --sequential             run silica and dftval one after the other (default: side by side,
#                            each capped at 45% of the GPU memory)
#   --resume-from DIR        an earlier run's $OUT: silica and dftval continue from the engine
#                            checkpoints its archives hold (parts it stopped at their limit)
# Work files live in $VF_WORK (default /tmp/vitriflow_gpu_work) and are kept: a second call on
# the same machine continues a stopped silica or dftval part from its checkpoint.
# Order: env check, throughput (alone, so its timings are clean), then silica and dftval.
# $OUT gets run.log, env.json, summary.txt and one archive per part (<part>.tar.gz with its
# results, part.log and status.json): at most 8 files, as the device call returns.
# Exit status: the number of parts that did not end ok (0 = all ok); 100 = could not start.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
read -ra PY <<< "${PYTHON:-python3}"
DEVICE=cuda
TINY=0
PARTS=throughput,silica,dftval
PACK="$HERE/pack.tar.xz"
USE_PACK=1
INPUTS=""
SEQUENTIAL=0
RESUME_FROM=""
declare -A LIMIT=()

die() { echo "run_on_device: $*" >&2; exit 100; }
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="${2:-}"; shift 2 ;;
        --tiny) TINY=1; shift ;;
        --parts) PARTS="${2:-}"; shift 2 ;;
        --limit) [[ "${2:-}" =~ ^(env|throughput|silica|dftval)=[0-9]+$ ]] \
                     || die "--limit: expected PART=SECONDS with PART one of env, throughput," \
                            "silica, dftval; got '${2:-}'"
                 LIMIT[${2%%=*}]="${2#*=}"; shift 2 ;;
        --pack) PACK="${2:-}"; shift 2 ;;
        --no-pack) USE_PACK=0; shift ;;
        --inputs) INPUTS="${2:-}"; shift 2 ;;
        --sequential) SEQUENTIAL=1; shift ;;
        --resume-from) RESUME_FROM="${2:-}"; shift 2 ;;
        *) die "unknown option '$1' (see the header of $0)" ;;
    esac
done
[[ "$DEVICE" =~ ^(cuda|cpu)$ ]] || die "--device: expected cuda or cpu, got '$DEVICE'"
for p in ${PARTS//,/ }; do
    [[ "$p" =~ ^(throughput|silica|dftval)$ ]] \
        || die "--parts: '$p' is not one of throughput, silica, dftval"
done
if [ "$TINY" = 1 ]; then defaults=(60 120 120 120); else defaults=(60 120 290 290); fi
i=0
for p in env throughput silica dftval; do
    LIMIT[$p]="${LIMIT[$p]:-${defaults[$i]}}"
    i=$((i + 1))
done
[ -n "${OUT:-}" ] || die "set OUT to the folder that receives the results"
mkdir -p "$OUT" || die "cannot create OUT=$OUT"
[ -z "$RESUME_FROM" ] || [ -d "$RESUME_FROM" ] || die "--resume-from: no folder $RESUME_FROM"
WORK="${VF_WORK:-${TMPDIR:-/tmp}/vitriflow_gpu_work}"
mkdir -p "$WORK" || die "cannot create the work folder $WORK"
T0=$SECONDS
say() { echo "run_on_device [$((SECONDS - T0)) s]: $*" | tee -a "$OUT/run.log"; }

say "device $DEVICE, tiny $TINY, parts $PARTS, limits env=${LIMIT[env]} throughput=${LIMIT[throughput]} silica=${LIMIT[silica]} dftval=${LIMIT[dftval]}"
if [ "$DEVICE" = cuda ] && command -v nvidia-smi > /dev/null; then
    say "$(nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version \
        --format=csv,noheader 2>&1)"
fi
if [ "$USE_PACK" = 1 ]; then
    [ -f "$PACK" ] || die "no pack at $PACK: build it with build_pack.sh, or pass --no-pack"
    rm -rf "$WORK/pack"
    "${PY[@]}" - "$PACK" "$WORK/pack" <<'EOF' || die "could not unpack $PACK"
import sys
import tarfile

with tarfile.open(sys.argv[1]) as tf:
    tf.extractall(sys.argv[2], filter="data")
EOF
    INPUTS="${INPUTS:-$WORK/pack/inputs}"
    export PYTHONPATH="$WORK/pack/site:$REPO/src:$HERE${PYTHONPATH:+:$PYTHONPATH}"
    say "unpacked $(du -sm "$WORK/pack" | cut -f1) MiB from $PACK"
else
    [ -n "$INPUTS" ] || die "--no-pack needs --inputs (prepare_inputs.py's folder)"
    export PYTHONPATH="$REPO/src:$HERE${PYTHONPATH:+:$PYTHONPATH}"
fi
[ -f "$INPUTS/inputs.json" ] || die "no $INPUTS/inputs.json (prepare_inputs.py writes it)"
export PYTHONUNBUFFERED=1
TINY_ARG=()
[ "$TINY" = 1 ] && TINY_ARG=(--tiny)

run_part() {  # PART [extra device_run.py options]: run it under its limit, archive it into $OUT
    local part=$1 limit=${LIMIT[$1]} t=$SECONDS rc
    shift
    mkdir -p "$WORK/$part"
    # a fresh start, except the engine checkpoints of a part that was stopped earlier
    find "$WORK/$part" -mindepth 1 -depth ! -name 'checkpoint*.pt' -delete
    if [ -n "$RESUME_FROM" ] && [ -f "$RESUME_FROM/$part.tar.gz" ]; then
        tar -xzf "$RESUME_FROM/$part.tar.gz" -C "$WORK" --wildcards "$part/checkpoint*.pt" \
            2> /dev/null && say "$part: checkpoints taken from $RESUME_FROM"
    fi
    say "$part started (limit $limit s)"
    timeout -k 15 "$limit" "${PY[@]}" "$HERE/device_run.py" "$part" --work "$WORK/$part" \
        --inputs "$INPUTS" --device "$DEVICE" "${TINY_ARG[@]}" "$@" > "$WORK/$part/part.log" 2>&1
    rc=$?
    if [ ! -f "$WORK/$part/status.json" ]; then  # stopped before it could say so itself
        local why="exit status $rc"
        [ $rc -eq 124 ] || [ $rc -eq 137 ] && why="time limit of $limit s"
        printf '{"part": "%s", "status": "%s", "reason": "%s", "wall_s": %d}\n' "$part" \
            "$([ $rc -eq 124 ] || [ $rc -eq 137 ] && echo "timed out" || echo failed)" \
            "stopped by the $why before writing its status" "$((SECONDS - t))" \
            > "$WORK/$part/status.json"
    fi
    say "$part ended: exit $rc after $((SECONDS - t)) s"
    [ $rc -eq 0 ] || tail -n 5 "$WORK/$part/part.log" | sed "s/^/  $part| /" | tee -a "$OUT/run.log"
    if [ "$part" != env ]; then
        tar -czf "$OUT/$part.tar.gz" -C "$WORK" "$part" || say "could not archive $part"
    fi
    return $rc
}

has() { [[ ",$PARTS," == *",$1,"* ]]; }
failed=0
run_part env
[ -f "$WORK/env/env.json" ] && cp "$WORK/env/env.json" "$OUT/env.json"
HIDE="$("${PY[@]}" -c 'import json, sys; print(",".join(json.load(open(sys.argv[1])).get("hide", [])))' \
    "$WORK/env/status.json" 2> /dev/null)"
if [ -n "$HIDE" ]; then
    export VF_HIDE_MODULES="$HIDE"
    say "left out after the env check: $HIDE"
fi
if has throughput; then
    run_part throughput --budget-s "$((LIMIT[throughput] - 20))" || failed=$((failed + 1))
fi
if has silica && has dftval && [ "$SEQUENTIAL" = 0 ]; then
    share=()
    [ "$DEVICE" = cuda ] && share=(--memory-fraction 0.45)
    run_part silica "${share[@]}" --beside dftval & pid_silica=$!
    run_part dftval "${share[@]}" --beside silica & pid_dftval=$!
    wait $pid_silica || failed=$((failed + 1))
    wait $pid_dftval || failed=$((failed + 1))
else
    if has silica; then run_part silica || failed=$((failed + 1)); fi
    if has dftval; then run_part dftval || failed=$((failed + 1)); fi
fi
"${PY[@]}" "$HERE/device_run.py" summary --work "$WORK" --only "$PARTS" > "$OUT/summary.txt" \
    2> /dev/null
tee -a "$OUT/run.log" < "$OUT/summary.txt"
say "done: $failed part(s) did not end ok; results in $OUT: $(cd "$OUT" && echo *)"
exit $failed
