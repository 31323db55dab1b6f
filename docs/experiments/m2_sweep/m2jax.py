"""Exploration only (not shipped): the project's pixel M2 (one softplus layer of 500, z 50, Bernoulli
p(x|y,z), alpha 0.1, 100 minibatches of 1 + 499, fresh binarisation, Adam as Keras 3 with eps 1e-7,
N(0, I) weight prior / N_total) re-expressed in JAX to sweep recipes quickly on a GPU.

usage: m2jax.py NAME --seconds S [--lr LR] [--init paper|code|torch] [--warm STEPS]
                [--labelled authors|all] [--ema 0.999] [--anneal-from E --epochs E]
"""
import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("name")
p.add_argument("--seconds", type=float, default=60)
p.add_argument("--epochs", type=int, default=100000)
p.add_argument("--anneal-from", type=int, default=0, help="epoch after which lr falls linearly to 0 at --epochs")
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--init", default="paper")
p.add_argument("--warm", type=int, default=0, help="full-batch Adam steps on the labelled objective first")
p.add_argument("--warm-lr", type=float, default=1e-3)
p.add_argument("--labelled", default="authors", help="authors: 1 labelled a step; all: every labelled a step, weight 1/batches")
p.add_argument("--ema", type=float, default=0.999)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--subset", type=int, default=0)
p.add_argument("--out", default=None)
a = p.parse_args()
out = open(a.out or f"{a.name}.log", "w")


def log(s):
    out.write(s + "\n")
    out.flush()
    print(f"[{a.name}] {s}", flush=True)


log(str(vars(a)))
K, Z, H, D, ALPHA, NB = 10, 50, 500, 784, 0.1, 100
raw = np.load("data/mnist.npz")
xtr = raw["x_train"].reshape(-1, 784).astype(np.float32) / 255.0
ytr = raw["y_train"].astype(np.int32)
x_train, y_train = xtr[:50000], ytr[:50000]
x_valid, y_valid = xtr[50000:], ytr[50000:]
x_test, y_test = raw["x_test"].reshape(-1, 784).astype(np.float32) / 255.0, raw["y_test"].astype(np.int32)
if a.subset:
    x_valid, y_valid, x_test, y_test = x_valid[:a.subset], y_valid[:a.subset], x_test[:a.subset], y_test[:a.subset]
# The project's labelled_split and minibatches, the same numpy draws.
rng = np.random.default_rng(a.seed)
chosen = [rng.choice(np.flatnonzero(y_train == c), 10, replace=False) for c in range(K)]
labelled = np.sort(np.concatenate(chosen))
unlabelled = np.setdiff1d(np.arange(50000), labelled)
rng = np.random.default_rng([a.seed, 1])
lab_b = rng.permutation(labelled).reshape(NB, -1).astype(np.int32)
unl_b = rng.permutation(unlabelled).reshape(NB, -1).astype(np.int32)
N_TOTAL, N_LAB = 50000, 100
BETA = ALPHA * N_TOTAL / N_LAB
valid_bin = (np.random.default_rng(1234).random(x_valid.shape, dtype=np.float32) < x_valid).astype(np.float32)
gen_eps = np.random.default_rng(1234).standard_normal((K, 1000, Z), np.float32)

Xtr, Ytr = jnp.asarray(x_train), jnp.asarray(y_train)


def init_params(key):
    def dense(key, fan_in, fan_out):
        k1, k2 = jax.random.split(key)
        if a.init == "paper":
            return 1e-3 * jax.random.normal(k1, (fan_in, fan_out)), jnp.zeros(fan_out)
        if a.init == "code":
            return (jax.random.normal(k1, (fan_in, fan_out)) / math.sqrt(fan_in),
                    1e-3 * jax.random.normal(k2, (fan_out,)))
        bound = 1 / math.sqrt(fan_in)  # PyTorch's nn.Linear default
        return (jax.random.uniform(k1, (fan_in, fan_out), minval=-bound, maxval=bound),
                jax.random.uniform(k2, (fan_out,), minval=-bound, maxval=bound))

    ks = jax.random.split(key, 6)
    c1, cb1 = dense(ks[0], D, H)
    c2, cb2 = dense(ks[1], H, K)

    def cond(k, din, dout):
        k1, k2 = jax.random.split(k)
        w, b = dense(k1, din + K, H)  # the first layer on [x, y], split as the project's LabelledDense
        wo, bo = dense(k2, H, dout)
        return {"wx": w[:din], "wy": w[din:], "b": b, "wo": wo, "bo": bo}
    return {"c1": c1, "cb1": cb1, "c2": c2, "cb2": cb2, "enc": cond(ks[2], D, 2 * Z), "dec": cond(ks[3], Z, D)}


def classify(p, x):
    return jax.nn.softplus(x @ p["c1"] + p["cb1"]) @ p["c2"] + p["cb2"]


def cmlp(q, x, y):
    return jax.nn.softplus(x @ q["wx"] + y @ q["wy"] + q["b"]) @ q["wo"] + q["bo"]


def labelled_bound(p, x, y, eps):
    mean, logvar = jnp.split(cmlp(p["enc"], x, y), 2, axis=-1)
    z = mean + jnp.exp(0.5 * logvar) * eps
    logits = cmlp(p["dec"], z, y)
    log_px = jnp.sum(x * logits - jax.nn.softplus(logits), -1)
    kl = 0.5 * jnp.sum(mean ** 2 + jnp.exp(logvar) - 1 - logvar, -1)
    return log_px - math.log(K) - kl


EVERY = jnp.eye(K)[:, None, :]


def unlabelled_bound(p, x, eps):
    log_q = jax.nn.log_softmax(classify(p, x))
    q = jnp.exp(log_q)
    b = labelled_bound(p, x, EVERY, eps)  # [K, n]
    return jnp.sum(q.T * b, 0) - jnp.sum(q * log_q, -1)


def prior(p):
    return 0.5 * sum(jnp.sum(v ** 2) for v in jax.tree_util.tree_leaves(p))


def loss(p, xl, yl, epsl, xu, epsu, wlab, n):
    yoh = jax.nn.one_hot(yl, K)
    logq = jnp.take_along_axis(jax.nn.log_softmax(classify(p, xl)), yl[:, None], 1)[:, 0]
    obj = wlab * (jnp.sum(labelled_bound(p, xl, yoh, epsl)) + BETA * jnp.sum(logq))
    if xu is not None:
        obj = obj + jnp.sum(unlabelled_bound(p, xu, epsu))
    return -obj / n + prior(p) / N_TOTAL


def adam(p, g, m, v, t, lr):
    m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
    v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
    step = lr * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
    p = jax.tree_util.tree_map(lambda p, m, v: p - step * m / (jnp.sqrt(v) + 1e-7), p, m, v)
    return p, m, v


def binarize(key, x):
    return (jax.random.uniform(key, x.shape) < x).astype(jnp.float32)


@jax.jit
def warm_steps(state, key):
    xl, yl = Xtr[labelled], Ytr[labelled]

    def body(state, key):
        p, m, v, t = state
        k1, k2 = jax.random.split(key)
        g = jax.grad(loss)(p, binarize(k1, xl), yl, jax.random.normal(k2, (N_LAB, Z)), None, None, 1.0, N_LAB)
        p, m, v = adam(p, g, m, v, t + 1, a.warm_lr)
        return (p, m, v, t + 1), None
    return jax.lax.scan(body, state, jax.random.split(key, 100))[0]


LAB_B, UNL_B, LAB_ALL = jnp.asarray(lab_b), jnp.asarray(unl_b), jnp.asarray(labelled)


@jax.jit
def epoch(state, ema, key, lr):
    def body(carry, inp):
        (p, m, v, t), ema = carry
        li, ui, key = inp
        if a.labelled == "all":
            li, wlab = LAB_ALL, 1.0 / NB
        else:
            wlab = 1.0
        k1, k2, k3, k4 = jax.random.split(key, 4)
        xl, xu = binarize(k1, Xtr[li]), binarize(k2, Xtr[ui])
        g = jax.grad(loss)(p, xl, Ytr[li], jax.random.normal(k3, (li.shape[0], Z)), xu,
                           jax.random.normal(k4, (K, ui.shape[0], Z)), wlab, 500.0)
        p, m, v = adam(p, g, m, v, t + 1, lr)
        ema = jax.tree_util.tree_map(lambda e, q: a.ema * e + (1 - a.ema) * q, ema, p)
        return ((p, m, v, t + 1), ema), None
    return jax.lax.scan(body, (state, ema), (LAB_B, UNL_B, jax.random.split(key, NB)))[0]


@jax.jit
def errors(p, x, y):
    logits = classify(p, x)
    log_q = jax.nn.log_softmax(logits)
    return jnp.mean(jnp.argmax(logits, 1) != y), jnp.mean(-jnp.sum(jnp.exp(log_q) * log_q, -1))


@jax.jit
def gen_error(p, x, y, eps):
    return jnp.mean(jnp.argmax(labelled_bound(p, x, EVERY, eps), 0) != y)


XV, YV, XT, YT = map(jnp.asarray, (x_valid, y_valid, x_test, y_test))
VB, GE = jnp.asarray(valid_bin[:1000]), jnp.asarray(gen_eps[:, :len(valid_bin[:1000])])


def report(tag, state, ema, start):
    p = state[0]
    ve, ent = errors(p, XV, YV)
    te, _ = errors(p, XT, YT)
    eve, _ = errors(ema, XV, YV)
    ete, _ = errors(ema, XT, YT)
    ge = gen_error(p, VB, YV[:1000], GE)
    log(f"{tag} | {time.time() - start:6.1f}s | valid {100 * ve:5.2f} test {100 * te:5.2f} | ema valid {100 * eve:5.2f} "
        f"test {100 * ete:5.2f} | entropy {ent:.3f} | gen err {100 * ge:5.2f}")


key = jax.random.key(a.seed)
key, kp = jax.random.split(key)
params = init_params(kp)
zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
state = (params, zeros, zeros, jnp.zeros((), jnp.float32))
start = time.time()
if a.warm:
    for i in range(a.warm // 100):
        key, k = jax.random.split(key)
        state = warm_steps(state, k)
    state = (state[0], zeros, zeros, jnp.zeros((), jnp.float32))  # a fresh Adam for the paper's objective
ema = state[0]
report("epoch    0", state, ema, start)
e = 0
while e < a.epochs and time.time() - start < a.seconds:
    e += 1
    lr = a.lr if not a.anneal_from or e <= a.anneal_from else a.lr * (a.epochs - e + 1) / (a.epochs - a.anneal_from)
    key, k = jax.random.split(key)
    state, ema = epoch(state, ema, k, lr)
    if e % (5 if e <= 50 else 10) == 0 or e <= 3:
        report(f"epoch {e:4d}", state, ema, start)
report(f"end {e:4d}", state, ema, start)
