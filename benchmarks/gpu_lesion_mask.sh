#!/usr/bin/env bash
# The lesion-mask condition on a GPU: train the "default" preset with --mask-channel and
# --lesion-share 0.5 on the 128 px phantom (PI-CAI layout, so that every slice has its lesion
# mask) for at most MAX_MINUTES, distil a student, and sample the evaluation set (T2W with and
# without a lesion, `--lesion-mask auto`; DWI and ADC paired with the held-out T2W slices, which
# pass their masks on). Everything goes under $OUT; give it a folder that is kept between calls.
#
#     OUT=gpu-run benchmarks/gpu_lesion_mask.sh train    # phantom and training (<= 10 min)
#     OUT=gpu-run benchmarks/gpu_lesion_mask.sh finish   # student and samples
#     OUT=gpu-run benchmarks/gpu_lesion_mask.sh          # both
#
# Run it again to go on: the phantom and manifests are kept, training resumes from its last
# save (`--resume`), and finished steps (student, samples) are skipped. Every setting below can
# be overridden from the environment; the tiniest run, on a CPU in about two minutes:
# MODEL=tiny SIZE=96 SLICES=3 PATIENTS=6 HELD_OUT=1 STEPS=2 BATCH=2 DISTILL_TRAJECTORIES=2
# DISTILL_STEPS=2 DISTILL_BATCH=2 TEACHER_STEPS=4 N=1 SAMPLE_STEPS=2 DEVICE=cpu COMPILE=
# CHECKPOINTS=student.
set -euo pipefail

OUT=${OUT:?set OUT to the folder for the results}
PYTHON=${PYTHON:-python}
MODEL=${MODEL:-default}
SIZE=${SIZE:-128}
SLICES=${SLICES:-10}
PATIENTS=${PATIENTS:-400}
HELD_OUT=${HELD_OUT:-20}
STEPS=${STEPS:-20000}
BATCH=${BATCH:-128}
MAX_MINUTES=${MAX_MINUTES:-8}
DISTILL_TRAJECTORIES=${DISTILL_TRAJECTORIES:-4096}
DISTILL_STEPS=${DISTILL_STEPS:-1300}
DISTILL_BATCH=${DISTILL_BATCH:-128}
TEACHER_STEPS=${TEACHER_STEPS:-20}
DISTILL_MINUTES=${DISTILL_MINUTES:-4}
N=${N:-64}
CHECKPOINTS=${CHECKPOINTS:-student checkpoint}
DEVICE=${DEVICE:-cuda}
COMPILE=${COMPILE:---compile}
# Sampling steps (default: each checkpoint's own: 20 for the teacher, the student's few).
SAMPLE_STEPS=${SAMPLE_STEPS:-}

PART=${1:-all}
case "$PART" in
train | finish | all) ;;
*)
    echo "usage: OUT=DIR $0 [train|finish|all]" >&2
    exit 2
    ;;
esac

mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/log.txt"; }

if [ "$PART" != finish ]; then
# 1. Phantom cohorts with their label volumes, and manifests with a mask per row.
for part in train:1:$PATIENTS held-out:2:$HELD_OUT; do
    IFS=: read -r name seed patients <<<"$part"
    if [ ! -f "$OUT/$name/manifest.csv" ]; then
        log "phantom $name: $patients patients at $SIZE px"
        rm -rf "$OUT/phantom-$name"
        "$PYTHON" -m synth phantom --out "$OUT/phantom-$name" --patients "$patients" \
            --seed "$seed" --size "$SIZE" --slices "$SLICES" --layout picai
        "$PYTHON" -m study prepare-picai --images "$OUT/phantom-$name/images" \
            --labels "$OUT/phantom-$name/labels" --out "$OUT/$name" | tee -a "$OUT/log.txt"
    fi
done

# 2. Train (resumable), at most MAX_MINUTES in this run.
log "train $MODEL at $SIZE px for at most $MAX_MINUTES minutes"
"$PYTHON" -m synth train --manifest "$OUT/train/manifest.csv" --out "$OUT/checkpoint" \
    --model "$MODEL" --size "$SIZE" --steps "$STEPS" --batch "$BATCH" --lesion-share 0.5 \
    --mask-channel --max-minutes "$MAX_MINUTES" --device "$DEVICE" --progress jsonl \
    --resume $COMPILE 2>&1 | tail -n 3 | tee -a "$OUT/log.txt"

fi

if [ "$PART" = train ]; then
    log "trained: run '$0 finish' for the student and the samples"
    exit 0
fi
if [ ! -f "$OUT/checkpoint/config.json" ]; then
    echo "$OUT/checkpoint holds no trained generator: run '$0 train' first" >&2
    exit 1
fi

# 3. Distil a few-step student of it.
if [ ! -f "$OUT/student/config.json" ]; then
    log "distil: $DISTILL_TRAJECTORIES trajectories, $DISTILL_STEPS steps"
    "$PYTHON" -m synth distill --teacher "$OUT/checkpoint" --manifest "$OUT/train/manifest.csv" \
        --out "$OUT/student" --trajectories "$DISTILL_TRAJECTORIES" --steps "$DISTILL_STEPS" \
        --batch "$DISTILL_BATCH" --teacher-steps "$TEACHER_STEPS" \
        --max-minutes "$DISTILL_MINUTES" --device "$DEVICE" --progress jsonl 2>&1 |
        tail -n 2 | tee -a "$OUT/log.txt"
fi

# 4. The evaluation set, from the student and the teacher, each image with its mask.
sample() {
    local checkpoint=$1 name=$2
    shift 2
    if [ ! -f "$OUT/samples/$name/manifest.csv" ]; then
        log "sample $name"
        "$PYTHON" -m synth sample --checkpoint "$OUT/$checkpoint" --out "$OUT/samples/$name" \
            --device "$DEVICE" --progress jsonl ${SAMPLE_STEPS:+--steps "$SAMPLE_STEPS"} "$@" 2>&1 |
            tail -n 1 | tee -a "$OUT/log.txt"
    fi
}
for checkpoint in $CHECKPOINTS; do
    sample "$checkpoint" "$checkpoint-t2w-lesion" --n "$N" --lesion-mask auto \
        --prompt "A T2 image of a prostate with a lesion"
    sample "$checkpoint" "$checkpoint-t2w-healthy" --n "$N" --lesion-mask auto \
        --prompt "A T2 image of a prostate without lesion"
    sample "$checkpoint" "$checkpoint-t2w-no-mask" --n "$N" \
        --prompt "A T2 image of a prostate with a lesion"
    for sequence in DWI ADC; do
        sample "$checkpoint" "$checkpoint-$sequence-paired" --n 1 \
            --condition-manifest "$OUT/held-out/manifest.csv" \
            --prompt "A $sequence image of a prostate"
    done
done
log "done: checkpoint, student and samples in $OUT (log.txt)"
