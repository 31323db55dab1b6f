#!/bin/bash
S=$1
export XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.1 PYTHONUNBUFFERED=1
run() { name=$1; shift; python3 docs/m2_sweep/m2jax.py $name --seconds $S --out $OUT/$name.log "$@" > /tmp/$name.out 2>&1 & }
run w500_3e-3_e250a150 --warm 500 --lr 3e-3 --epochs 250 --anneal-from 150
run w500_3e-3_e250a125_s1 --warm 500 --lr 3e-3 --epochs 250 --anneal-from 125 --seed 1
run w500_3e-3_s2 --warm 500 --lr 3e-3 --seed 2
run w500_1e-2 --warm 500 --lr 1e-2
run nowarm_3e-3 --lr 3e-3
run torch_3e-3 --init torch --lr 3e-3
run w500_3e-3_s1 --warm 500 --lr 3e-3 --seed 1
run w2000_3e-3 --warm 2000 --lr 3e-3
wait
for f in $OUT/*.log; do echo "== $f"; tail -2 $f; done
