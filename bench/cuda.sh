#!/usr/bin/env bash
# The GPU checks of one lent-device run, in one command (under 10 minutes on an H200):
# the CUDA tests, then the CUDA benchmarks (eager, AMP, steps_per_execution=8, jit_compile
# with it, CUDA graphs with it). Each part has its own timeout, 560 s in all.
# Results go to $OUT (or ./cuda-out): tests.txt and bench.md.
#
#   bash bench/cuda.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-cuda-out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$out/tests.txt"
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_grad_free.py 2>&1 | tee -a "$out/tests.txt"
status=${PIPESTATUS[0]}
bench="python3 bench/peers.py --device cuda --case mlp --repeats 3 --markdown $out/bench.md"
timeout 40 $bench
timeout 40 $bench --amp
timeout 40 $bench --steps-per-execution 8
timeout 80 $bench --jit --steps-per-execution 8
timeout 80 $bench --jit-mode reduce-overhead --steps-per-execution 8
timeout 40 python3 bench/peers.py --device cuda --case inference --repeats 3 --markdown "$out/bench.md"
exit "$status"
