#!/usr/bin/env bash
# Issue 16's device checks in one run: at most 9.5 minutes on an H200, each step under its own
# timeout (the device tool allows 10 a command, 15 a session, start-up included). Prepared on a
# machine without a GPU and never run yet; run it from a session whose task is lent one:
#
#   1. here, once, in the repository root: the packages the device's Python 3.12 lacks, as wheels
#        echo /.whl/ >> .git/info/exclude
#        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#          pydantic pydantic-core annotated-types typing-inspection optuna alembic sqlalchemy colorlog mako \
#          greenlet mnist1d
#      (keep one version of each; pydantic-core must be the version pydantic's METADATA names)
#   2. run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=590), then give_back.
#
# Prints, in order: the CUDA suite's summary line, the throughput table and its last line
# `gpu: babysit eager/bare R1, babysit graph/bare R2 (makemore-bn, batch 32)`, the resume check's
# `resume: exact`, and the 200,000-step makemore-bn val loss with graphs against the CPU's.
# Everything also lands in $OUT (suite.txt, throughput.txt, resume.txt, bn200k.txt).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD/src || exit 1
export PYTHONUNBUFFERED=1
O=${OUT:-/tmp/gpu_check}; mkdir -p "$O"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"

# 4 (started first, on the CPU cores meanwhile): the same 200,000-step makemore-bn on the CPU
OMP_NUM_THREADS=2 BABYSIT_DEVICE=cpu timeout 400 python3 -m babysit.cli train makemore-bn --out "$O/bn_cpu" \
  > "$O/bn_cpu.log" 2>&1 &
cpu_pid=$!

# 1. the suite on CUDA (about 3 minutes with -n 8)
BABYSIT_TEST_DEVICE=cuda timeout 220 python3 -m pytest -q -n 8 -p no:cacheprovider --timeout 200 2>&1 \
  | tail -30 | tee "$O/suite.txt"

# 2. throughput: bare, babysit eager, babysit graph (about 3 minutes)
timeout 190 python3 benchmarks/gpu_throughput.py --rounds 2 --seconds 1.5 2>&1 | tee "$O/throughput.txt"

# 3. kill-and-resume with train.deterministic: true (the uninterrupted run's final loss, exactly)
timeout 80 python3 benchmarks/gpu_resume_check.py --out "$O/resume" 2>&1 | tail -5 | tee "$O/resume.txt"

# 4. makemore-bn, 200,000 steps with graphs: val loss within 0.01 of the CPU run's
timeout 90 python3 -m babysit.cli train makemore-bn --out "$O/bn_graph" --set train.compile=graph \
  > "$O/bn_graph.log" 2>&1
wait $cpu_pid
python3 - "$O" <<'PY' | tee "$O/bn200k.txt"
import json, sys
from pathlib import Path
o = Path(sys.argv[1])
g, c = (json.loads((o / d / "summary.json").read_text()) for d in ("bn_graph", "bn_cpu"))
print(f"makemore-bn 200k: graph val {g['val_loss']:.4f} ({g['steps_per_s']:,.0f} steps/s, {g['compile']}, "
      f"peak {g.get('peak_gpu_memory_mb')} MiB), cpu val {c['val_loss']:.4f} ({c['steps_per_s']:,.0f} steps/s); "
      f"gap {abs(g['val_loss'] - c['val_loss']):.4f} (bar 0.01)")
PY
