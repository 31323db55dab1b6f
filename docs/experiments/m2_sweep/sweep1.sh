#!/bin/bash
# Runs the exploration configs side by side on the GPU, each for $1 seconds of training.
S=$1
export XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.1 PYTHONUNBUFFERED=1
python3 -c "import jax; print(jax.__version__, jax.devices())"
run() { name=$1; shift; python3 docs/m2_sweep/m2jax.py $name --seconds $S --out $OUT/$name.log "$@" > /tmp/$name.out 2>&1 & }
run base --lr 1e-3
run warm500 --warm 500 --lr 1e-3
run warm500_lr3e-4 --warm 500 --lr 3e-4
run warm500_lr3e-3 --warm 500 --lr 3e-3
run warm500_all --warm 500 --labelled all --lr 1e-3
run all --labelled all --lr 1e-3
run torchinit_lr3e-4 --init torch --lr 3e-4
run warm2000_all --warm 2000 --labelled all --lr 1e-3
sleep 20; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
wait
for f in /tmp/*.out; do echo "== $f"; grep -v "^\[" $f | tail -3; done
for f in $OUT/*.log; do echo "== $f"; tail -2 $f; done
