#!/usr/bin/env python
"""Diagnostic of the jet eta gap (issue 15, BENCHMARKS "The jet eta gap found"): train FPCD's jet network
alone on a subset of a run's standardised jet features (0 pT, 1 eta, 2 mass, 3 N), optionally beside a
synthetic extra dimension (--extra gauss|const|spike|t3|box|shuffN) or with the Gaussianising quantile
preprocessing (--gauss: N - U(0, 1), then per class empirical CDF -> inverse normal CDF), and print the
plain W1 and kurtosis of each feature of 3,000 generated jets (64 DDIM steps) against held-out jets.
A quick experimental script kept so that the BENCHMARKS rows can be rerun; it trains on jetnet's whole
train split (not the run's training/validation split) and writes its own v-loss step and EMA.

    python benchmarks/jet_eta_point_mass.py --features 1 --extra const --classes q
    python benchmarks/jet_eta_point_mass.py --features 0,1,2,3 --gauss --classes g,q,t,w,z
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--run", default="runs/reference-long/run-30", help="trained FPCD run")
p.add_argument("--data", default="runs/reference-long/data", help="its JetNet-format directory")
p.add_argument("--features", default="0,1,2,3")
p.add_argument("--classes", default="q")
p.add_argument("--epochs", type=int, default=48)
p.add_argument("--jitter", type=float, default=0.0, help="uniform dequantisation of N, in particles")
p.add_argument("--lr", type=float, default=None)
p.add_argument("--ema", type=float, default=None)
p.add_argument("--opt", default=None)
p.add_argument("--clip", type=float, default=-1)
p.add_argument("--extra", default="", help="extra dimensions: gauss,const,spike,t3,box,shuffN")
p.add_argument("--gauss", action="store_true")
p.add_argument("--blocks", type=int)
p.add_argument("--width", type=int)
args = p.parse_args()
import tensorflow as tf  # noqa: E402
from jet_alone_training import ema_denoiser, ema_optimizer_schedule, held_out_jets, make_train_step  # noqa: E402
from scipy.special import ndtr, ndtri  # noqa: E402
from scipy.stats import kurtosis, wasserstein_distance  # noqa: E402

from gsgm.config import load_config  # noqa: E402
from gsgm.data.jetnet_format import read_jetnet_file  # noqa: E402
from gsgm.data.loading import jetnet_split_indices  # noqa: E402
from gsgm.data.preprocessing import JET_CLASSES, JetPreprocessor  # noqa: E402
from gsgm.diffusion.ddim import ddim_sample  # noqa: E402
from gsgm.models.jet_resnet import build_jet_net  # noqa: E402

run, data = args.run, args.data
cfg = load_config(os.path.join(run, "config.json"))
if args.lr:
    cfg.training.learning_rate = args.lr
if args.ema:
    cfg.training.ema_decay = args.ema
if args.opt:
    cfg.training.optimizer = args.opt
if args.clip >= 0:
    cfg.training.grad_clip_norm = args.clip or None
cfg.jet_net.num_blocks = args.blocks or cfg.jet_net.num_blocks
cfg.jet_net.width = args.width or cfg.jet_net.width
pre = JetPreprocessor.load(os.path.join(run, "preprocessing.json"))
feats = [int(f) for f in args.features.split(",")]
classes = args.classes.split(",")
xs, labs, held = [], [], {}
for c in classes:
    _, jets = read_jetnet_file(os.path.join(data, f"{c}.hdf5"))
    tr = jets[jetnet_split_indices(len(jets), "train")]
    held[c] = held_out_jets(data, c, 3000)
    lab = JET_CLASSES.index(c)
    xs.append(tr)
    labs.append(np.full(len(tr), lab))
raw = np.concatenate(xs).astype(np.float64)
labels = np.concatenate(labs)
rng = np.random.default_rng(0)
if args.jitter:
    raw[:, 3] = raw[:, 3] - args.jitter * rng.uniform(0, 1, len(raw))
KN = np.linspace(0, 1, 2001)
qmaps = {}
if args.gauss:
    raw[:, 3] = raw[:, 3] - rng.uniform(0, 1, len(raw))
    normq = np.zeros_like(raw)
    for lab in np.unique(labels):
        s_ = labels == lab
        knots = np.quantile(raw[s_], KN, axis=0)  # [K,4]
        qmaps[lab] = knots
        for f in range(4):
            u = np.interp(raw[s_, f], knots[:, f], KN)
            normq[s_, f] = ndtri(np.clip(u, 1e-6, 1 - 1e-6))


def inverse(out, lab):
    if not args.gauss:
        return out * pre.jet_std[lab] + pre.jet_mean[lab]
    u = ndtr(out)
    g = np.stack([np.interp(u[:, f], KN, qmaps[lab][:, f]) for f in range(4)], 1)
    g[:, 3] = np.ceil(g[:, 3])
    return g


norm = ((raw - pre.jet_mean[labels]) / pre.jet_std[labels]).astype(np.float32)
if args.gauss:
    norm = normq.astype(np.float32)
x_all = norm[:, feats]


def extra_dimension(kind: str, n: int) -> np.ndarray:
    """[n] synthetic values of one extra target dimension (unit-scale, independent of the jets)."""
    if kind == "gauss":
        return rng.normal(size=n)
    if kind == "const":  # like the standardised N of top jets
        return np.zeros(n)
    if kind == "spike":  # like the standardised N of light quarks
        return np.where(rng.uniform(size=n) < 0.9, 0.24, rng.normal(-3, 4, n))
    if kind == "t3":
        return rng.standard_t(3, n) / np.sqrt(3)
    if kind == "box":
        return (rng.uniform(size=n) - 0.5) * np.sqrt(12)
    if kind == "shuffN":
        return norm[rng.permutation(n), 3]
    raise ValueError(f"--extra: unknown dimension {kind!r}")


for kind in filter(None, args.extra.split(",")):
    col = extra_dimension(kind, len(x_all))
    x_all = np.concatenate([x_all, col[:, None].astype(np.float32)], 1)
onehot_all = np.eye(5, dtype=np.float32)[labels]
batch = cfg.training.batch_size
spe = len(x_all) // batch
net = build_jet_net(cfg.jet_net, 5, num_jet_features=x_all.shape[1], embedding=cfg.embedding, seed=0)
ema, opt, sch = ema_optimizer_schedule(net, cfg.training, spe)
decay = cfg.training.ema_decay


step = make_train_step(net, ema, opt, sch, decay)
t0 = time.perf_counter()
for ep in range(args.epochs):
    order = rng.permutation(len(x_all))
    tot = 0.0
    for k in range(spe):
        i = order[k * batch : (k + 1) * batch]
        tot += float(step(x_all[i], {"class_onehot": onehot_all[i]}, tf.constant([ep, k], tf.int64)))
    if ep % 8 == 7 or ep == args.epochs - 1:
        print(f"epoch {ep + 1} loss {tot / spe:.4f} {time.perf_counter() - t0:.0f}s", flush=True)
den = ema_denoiser(ema, sch)
for c in classes:
    lab = JET_CLASSES.index(c)
    n = 3000
    oh = tf.constant(np.eye(5, dtype=np.float32)[np.full(n, lab)])
    out = ddim_sample(
        den,
        tf.random.stateless_normal([n, x_all.shape[1]], seed=[7, lab]),
        sch,
        64,
        cond={"class_onehot": oh},
    ).numpy()
    full = np.zeros((n, 4))
    full[:, feats] = out[:, : len(feats)]
    gen = inverse(full, lab)
    msg = []
    for f in feats:
        msg.append(
            f"f{f} W1 {wasserstein_distance(gen[:, f], held[c][:, f]):.4f} "
            f"kurt {kurtosis(gen[:, f]) + 3:.2f}/{kurtosis(held[c][:, f]) + 3:.2f}"
        )
    print(c, args.features, "|", " | ".join(msg), flush=True)
