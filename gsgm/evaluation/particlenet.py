"""jetnet's FPND ParticleNet, evaluated densely: the same weights and activations, about 3x faster.

FPND passes jets through jetnet's pretrained ParticleNet (three EdgeConv blocks with k = 16
neighbours, a global mean and one linear layer) and compares the mean and covariance of the 256
activations with stored statistics of the real JetNet jets. jetnet runs it through torch-geometric's
sparse message passing, with autograd on and batch norm as separate layers. Every jet has exactly
30 nodes (padded particles included, as jetnet feeds them), so the same network can be written on
dense [B, 30, 16, C] edge tensors:

* batch norm in evaluation mode is an affine map, folded into the linear layer before it;
* the first linear layer of an edge network acts on ``[x_i, x_j - x_i]``, which is
  ``(A - B) x_i + B x_j``: it is computed once per node instead of once per edge (16x less work);
* neighbours come from one dense float64 distance matrix per block, ordered like
  :func:`gsgm.evaluation.knn_fallback.knn_graph` (and torch-cluster's search, see there);
* no autograd.

:func:`particlenet_activations` equals jetnet's ``pnet(x, ret_activations=True)`` to float32 round-off
and :func:`fpnd` equals ``jetnet.evaluation.fpnd`` (tests/test_fpnd_dense.py compares both, and the
FPND values recorded with torch-cluster installed).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["DenseParticleNet", "fpnd", "load_dense_particlenet", "particlenet_activations"]

NUM_PARTICLES = 30
NEIGHBOURS = 16


@dataclass(frozen=True)
class EdgeBlock:
    """One EdgeConv block with batch norm folded in: weights as torch tensors (float32).

    ``centre_weight`` [C_in, K] and ``neighbour_weight`` [C_in, K] split the first linear layer
    (``x_i`` and ``x_j`` terms); ``hidden`` holds the two [K, K] weights and [K] biases that follow.
    """

    centre_weight: object
    neighbour_weight: object
    first_bias: object
    hidden: tuple[tuple[object, object], ...]


@dataclass(frozen=True)
class DenseParticleNet:
    """jetnet's FPND ParticleNet as dense tensors: three edge blocks and the activation layer."""

    blocks: tuple[EdgeBlock, ...]
    fc_weight: object  # [C_total, 256]
    fc_bias: object  # [256]

    def to(self, dtype) -> DenseParticleNet:
        """The same network with every weight cast to the torch ``dtype`` (float64 for reference checks)."""
        return DenseParticleNet(
            tuple(
                EdgeBlock(
                    block.centre_weight.to(dtype),
                    block.neighbour_weight.to(dtype),
                    block.first_bias.to(dtype),
                    tuple((weight.to(dtype), bias.to(dtype)) for weight, bias in block.hidden),
                )
                for block in self.blocks
            ),
            self.fc_weight.to(dtype),
            self.fc_bias.to(dtype),
        )


def _fold_batch_norm(linear, norm):
    """(weight [in, out], bias [out]) of ``norm(linear(x))`` with ``norm`` in evaluation mode."""
    import torch

    with torch.no_grad():
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        weight = (linear.weight * scale[:, None]).T.contiguous()
        bias = (linear.bias - norm.running_mean) * scale + norm.bias
    return weight, bias


def dense_from_jetnet(pnet) -> DenseParticleNet:
    """Fold a loaded ``jetnet.evaluation.particlenet._ParticleNet`` into a :class:`DenseParticleNet`."""
    import torch

    if pnet.k != NEIGHBOURS or pnet.num_hits != NUM_PARTICLES:
        raise ValueError(f"expected jetnet's ParticleNet with k={NEIGHBOURS}, {NUM_PARTICLES} particles")
    blocks = []
    for edge_net in pnet.edge_nets:
        layers = list(edge_net.model)
        # Linear, BatchNorm1d, ReLU, three times
        folded = [_fold_batch_norm(layers[i], layers[i + 1]) for i in range(0, len(layers), 3)]
        first_weight, first_bias = folded[0]
        width = first_weight.shape[0] // 2
        # [x_i, x_j - x_i] @ W = x_i @ (W_top - W_bottom) + x_j @ W_bottom
        top, bottom = first_weight[:width], first_weight[width:]
        with torch.no_grad():
            blocks.append(
                EdgeBlock(
                    centre_weight=(top - bottom).contiguous(),
                    neighbour_weight=bottom.contiguous(),
                    first_bias=first_bias,
                    hidden=tuple(folded[1:]),
                )
            )
    fc = pnet.fc1[0]
    with torch.no_grad():
        return DenseParticleNet(tuple(blocks), fc.weight.T.contiguous(), fc.bias.clone())


@functools.cache
def load_dense_particlenet(jet_class: str) -> tuple[DenseParticleNet, np.ndarray, np.ndarray]:
    """jetnet's pretrained FPND network and the real jets' activation statistics for ``jet_class``.

    Returns:
        (network, mu [256], sigma [256, 256]) — the same files jetnet's ``fpnd`` reads.
    """
    from jetnet.evaluation import gen_metrics

    from gsgm.evaluation.knn_fallback import provide_torch_cluster

    with provide_torch_cluster():
        gen_metrics._init_fpnd_dict("jetnet", jet_class, NUM_PARTICLES, 3, "cpu")
    entry = gen_metrics._eval_module.fpnd_dict["jetnet"][NUM_PARTICLES][jet_class]
    pnet = entry["pnet"].eval()
    return dense_from_jetnet(pnet), np.asarray(entry["mu"]), np.asarray(entry["sigma"])


def _edge_block(x, block: EdgeBlock, neighbours):
    """One EdgeConv block: x [B, n, C] -> mean over neighbours of the edge network, [B, n, K]."""
    import torch

    batch, nodes, _ = x.shape
    centre = x @ block.centre_weight + block.first_bias  # [B, n, K]
    from_neighbour = x @ block.neighbour_weight  # [B, n, K]
    width = centre.shape[-1]
    gathered = torch.gather(
        from_neighbour,
        1,
        neighbours.reshape(batch, nodes * NEIGHBOURS, 1).expand(batch, nodes * NEIGHBOURS, width),
    ).reshape(batch, nodes, NEIGHBOURS, width)
    edges = torch.relu_(gathered + centre[:, :, None, :])
    for weight, bias in block.hidden:
        edges = torch.relu_(torch.addmm(bias, edges.reshape(-1, width), weight)).reshape(
            batch, nodes, NEIGHBOURS, -1
        )
        width = edges.shape[-1]
    return edges.mean(dim=2)


def particlenet_activations(
    network: DenseParticleNet, particles: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """The 256 FPND activations of each jet: [N, 256] from normalised particles [N, 30, 3].

    The dtype of the result (and of the computation) is that of ``network`` (float32 as loaded;
    ``network.to(torch.float64)`` gives a reference free of float32 round-off).

    ``particles`` are jetnet's FPND inputs after ``JetNet.fpnd_norm`` (eta_rel, phi_rel, pt_rel
    linearly rescaled); padded particles are fed as they are, as jetnet does.
    """
    import torch

    from gsgm.evaluation.knn_fallback import dense_nearest

    if particles.ndim != 3 or particles.shape[1:] != (NUM_PARTICLES, 3):
        raise ValueError(f"FPND particles must be [N, {NUM_PARTICLES}, 3], got {list(particles.shape)}")
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(particles), batch_size):
            x = torch.as_tensor(particles[start : start + batch_size]).to(network.fc_weight.dtype)
            for index, block in enumerate(network.blocks):
                # the first block finds neighbours in (eta, phi) only, the later ones in all features
                neighbours = dense_nearest(x[..., :2] if index == 0 else x, NEIGHBOURS)
                x = torch.cat((_edge_block(x, block, neighbours), x), dim=2)
            pooled = x.mean(dim=1)
            outputs.append((pooled @ network.fc_weight + network.fc_bias).numpy())
    if not outputs:
        return np.zeros((0, network.fc_bias.shape[0]), dtype=np.float32)  # jetnet's dtype
    return np.concatenate(outputs)


def fpnd(particles: np.ndarray, jet_class: str, batch_size: int = 512, dtype=None) -> float:
    """Frechet ParticleNet distance of jets to jetnet's real-JetNet statistics (= ``jetnet.evaluation.fpnd``).

    Args:
        particles: [N, 30, 3] (eta_rel, phi_rel, pt_rel), not normalised; jetnet uses at most 50,000.
        jet_class: "g", "q" or "t".
        dtype: torch dtype of the network pass (None: float32, jetnet's).
    """
    import torch
    from jetnet.datasets import JetNet
    from jetnet.evaluation.gen_metrics import _calculate_frechet_distance

    network, mu, sigma = load_dense_particlenet(jet_class)
    if dtype is not None:
        network = network.to(dtype)
    jets = torch.tensor(np.asarray(particles[:50_000], dtype=np.float32))
    JetNet.fpnd_norm(jets, inplace=True)
    activations = particlenet_activations(network, jets.numpy(), batch_size)
    # float32 activations as in jetnet: np.mean then averages in float32, np.cov in float64
    return float(
        _calculate_frechet_distance(
            mu, sigma, np.mean(activations, axis=0), np.cov(activations, rowvar=False)
        )
    )
