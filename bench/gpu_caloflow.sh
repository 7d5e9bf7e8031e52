#!/usr/bin/env bash
# CaloFlow on a GPU, in one short call: the CUDA tests, then bench/caloflow.py's generation
# timings on the GPU (CaloGAN pi+, then dataset 1 photons), each after a token training on the GPU
# (TRAIN showers, EPOCHS epochs per stage): a pass through flow II costs the same whatever the
# weights; the timing table says how often flow II was drawn again, the one way the weights
# change the cost. No classifier (--no-evaluate): fidelity is measured by the CPU runs
# (docs/benchmarks.md). Sized from session 23's lease on an H200: training there is
# kernel-launch bound (CaloGAN teacher 43 ms and student 130 ms per step), so full-size training
# does not fit a 15-minute lease; students are timed before the teacher, which is slowest.
#
#   bench/gpu_caloflow.sh OUT_DIR        # from the repository root, hepflows importable
#
# Each step has its own time limit in seconds (T_TESTS, T_CALOGAN, T_DS1); a step stopped at its
# limit keeps the timings it finished. Logs and RESULTS.json land in OUT_DIR, flat (STEP.log,
# STEP.json; names of letters, digits, '-', '_' and '.' only).
set -u
out=${1:?usage: bench/gpu_caloflow.sh OUT_DIR}
device=${DEVICE:-cuda}
train=${TRAIN:-5000}
epochs=${EPOCHS:-1}
threads=${THREADS:-$(nproc)}
work=${WORK:-$(mktemp -d)}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    timeout "${T_TESTS:-180}" python3 -m pytest -q -p no:cacheprovider -k cuda -rA \
        tests/calo/test_caloflow.py tests/flows/test_models.py tests/integrate/test_integrands.py \
        tests/test_train.py
    echo "tests: exit $?"
} >"$out/tests.log" 2>&1

step() {  # step NAME SECONDS ARGS...: one bench/caloflow.py call
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    timeout "$limit" python3 bench/caloflow.py \
        --train "$train" --epochs "$epochs" --device "$device" --threads "$threads" \
        --no-evaluate --workdir "$work/$name" "$@" >"$out/$name.log" 2>&1
    echo "$name: exit $? after $((SECONDS - start)) s" >>"$out/$name.log"
    cp "$work/$name/RESULTS.json" "$out/$name.json" 2>/dev/null
}

step calogan-pion "${T_CALOGAN:-240}" --particle pi+ \
    --models student-bf16-compiled,student,student-bf16,student-compiled,teacher
step ds1-photons "${T_DS1:-120}" --particle gamma --geometry ds1-photons \
    --models student-bf16-compiled,student,student-bf16
