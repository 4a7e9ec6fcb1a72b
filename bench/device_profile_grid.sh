#!/usr/bin/env bash
# Profile a saved calibration grid on a machine with PyTorch and no
# TensorFlow (the lent GPU machine: 16 cores), Keras on its torch backend,
# one profile per core: `bench/profile_grid.py run --jobs`.
#
#   bash bench/device_profile_grid.sh OUT_DIR [profile_grid run options...]
#
# OUT_DIR holds runs.jsonl, models/ and npz/ (carried: bench/out is not in
# git); .whl/ holds wheels for what the machine lacks (keras, namex, optree,
# absl-py, typer, click, shellingham, typing_extensions). The rows go to
# OUT_DIR and, with the run's log, to $OUT when it is set.
set -euo pipefail
grid="$1"; shift
work="$(mktemp -d)"
# calibrate.py puts src/ first on sys.path; pyproject maps reglint.rules to
# rules/, which a bare src/ lacks: give this throwaway copy of the tree one.
[ -e src/reglint/rules ] || cp -r rules src/reglint/rules
missing=$(python3 -c "import importlib.util as u; print(' '.join(m for m in ('keras','namex','optree','absl','typer','click','shellingham','typing_extensions') if u.find_spec(m) is None))")
wheels=()
for m in $missing; do
  prefix=$m; [ "$m" = absl ] && prefix=absl_py
  wheels+=($(ls .whl/${prefix}-*.whl | tail -1))
done
if [ ${#wheels[@]} -gt 0 ]; then
  python3 -m pip install -q --no-index --no-deps --target "$work/site" "${wheels[@]}"
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export KERAS_BACKEND=torch TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import keras, torch, reglint.rules; print('keras', keras.__version__, 'torch', torch.__version__, 'cores', __import__('os').cpu_count())"
status=0
# LIMIT seconds at most (default 480), so a partial grid still comes back: rows are appended as they finish
timeout "${LIMIT:-480}" python3 bench/profile_grid.py run --out "$grid" --backend torch "$@" 2>&1 | tee "$work/run.log" \
  || status=$?
if [ -n "${OUT:-}" ]; then
  cp "$grid"/profile_grid*.jsonl "$work/run.log" "$OUT"/
fi
exit $status
