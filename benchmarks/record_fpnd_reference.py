"""Record FPND of shipped jets with the real torch-cluster, as the reference of the fallback's test.

Run once where torch-cluster is installed (``make install-fpnd``, or ``pip install --target DIR
torch-cluster==1.6.3`` and ``PYTHONPATH=DIR``); writes tests/data/fpnd_reference.json with the values
and the exact jets used (the first N of each class file of the shipped 30-particle sample), and checks
that gsgm's pure-torch knn_graph gives torch-cluster's neighbour sets on those jets.

    PYTHONPATH=.:/path/to/torch_cluster_dir python benchmarks/record_fpnd_reference.py [--jets 500]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import torch

from gsgm.data.jetnet_format import class_file_name, read_jetnet_file
from gsgm.data.loading import builtin_data_dir
from gsgm.evaluation.knn_fallback import knn_graph, torch_cluster_installed
from gsgm.evaluation.metrics import fpnd
from gsgm.utils.provenance import now_iso

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "fpnd_reference.json"


def neighbour_sets(edge_index: torch.Tensor) -> dict[int, frozenset[int]]:
    sets: dict[int, set[int]] = {}
    for source, target in edge_index.t().tolist():
        sets.setdefault(target, set()).add(source)
    return {k: frozenset(v) for k, v in sets.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jets", type=int, default=500)
    args = parser.parse_args()
    if not torch_cluster_installed():
        raise SystemExit(
            "error: torch_cluster is not importable: the reference must come from the real package"
        )
    from torch_cluster import knn_graph as cluster_knn_graph

    values = {}
    for jet_class in ("g", "q", "t"):
        particles, _ = read_jetnet_file(builtin_data_dir() / class_file_name(jet_class, 30))
        jets = particles[: args.jets]
        # neighbour sets of the first EdgeConv block (eta, phi), on real particles only
        x = torch.from_numpy(np.ascontiguousarray(jets[..., :2].reshape(-1, 2)))
        batch = torch.arange(len(jets)).repeat_interleave(30)
        ours, theirs = (
            neighbour_sets(knn_graph(x, 16, batch)),
            neighbour_sets(cluster_knn_graph(x, 16, batch)),
        )
        real = jets[..., 3].reshape(-1) > 0
        differing = [node for node in range(len(real)) if real[node] and ours[node] != theirs[node]]
        values[jet_class] = fpnd(jets, jet_class).mean
        print(
            f"{jet_class}: FPND {values[jet_class]:.6f}; neighbour index sets differing {len(differing)}"
        )
    OUT.write_text(
        json.dumps(
            {
                "description": "FPND of the first `jets` jets of each shipped 30-particle class file, "
                "computed with the real torch-cluster (benchmarks/record_fpnd_reference.py)",
                "jets": args.jets,
                "fpnd": values,
                "torch_cluster": importlib.metadata.version("torch-cluster"),
                "torch": torch.__version__,
                "jetnet": importlib.metadata.version("jetnet"),
                "created": now_iso(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
