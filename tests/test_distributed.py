"""Data-parallel training: the pieces without Horovod (fast), then `horovodrun -np 2` end to end (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gsgm.config import config_to_dict, load_config
from gsgm.data.pipeline import make_dataset, train_valid_split
from gsgm.families.fpcd import build_model, train
from gsgm.training import distributed as distributed_module
from gsgm.training.distributed import (
    LAUNCHER_SIZE_VARIABLES,
    Distributed,
    DistributedSetupError,
    init_distributed,
    launcher_world_size,
)
from gsgm.training.loop import TrainingSetupError
from gsgm.training.optim import make_optimizer
from gsgm.training.run_dir import RunDirectory

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "configs" / "quick.json"


def tiny_config(epochs: int = 2):
    cfg = load_config(QUICK)
    cfg.data.classes = ["t", "w"]
    cfg.jet_net.num_blocks, cfg.jet_net.width = 1, 16
    cfg.particle_net.embed_dim, cfg.particle_net.num_transformer_blocks = 8, 1
    cfg.particle_net.num_heads, cfg.particle_net.ffn_dim, cfg.particle_net.output_hidden_dim = 2, 16, 8
    cfg.embedding.fourier_features, cfg.embedding.time_dims, cfg.embedding.cond_dim = 4, [8, 8], 8
    cfg.training.batch_size, cfg.training.epochs, cfg.training.ema_decay = 16, epochs, 0.9
    cfg.training.early_stopping_patience = epochs
    cfg.training.seed = 7
    return cfg


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(distributed_module.ENV_MODE, raising=False)


# ------------------------------------------------------------------------------------------------
# set-up decisions


def test_launcher_world_size_reads_the_launchers_variables():
    assert launcher_world_size({}) == 1
    assert launcher_world_size({"HOROVOD_SIZE": "4"}) == 4
    assert launcher_world_size({"OMPI_COMM_WORLD_SIZE": "2", "PMI_SIZE": "2"}) == 2
    assert launcher_world_size({"SLURM_STEP_NUM_TASKS": "16"}) == 16
    assert launcher_world_size({"PMI_SIZE": "garbage"}) == 1


def test_single_process_by_default(no_launcher):
    dist = init_distributed()
    assert type(dist) is Distributed and (dist.rank, dist.size, dist.is_chief) == (0, 1, True)
    assert init_distributed("none").size == 1
    grads = [np.ones(2), None]
    assert dist.average_gradients(grads) == grads
    assert dist.average_scalars({"val_loss": 2}) == {"val_loss": 2.0}
    assert dist.allgather_object(3) == [3] and dist.broadcast_object("x") == "x"
    assert dist.verbosity(2) == 2 and Distributed(rank=1, size=2).verbosity(2) == 0


def test_mode_none_refuses_a_multi_process_launch(no_launcher, monkeypatch):
    monkeypatch.setenv("HOROVOD_SIZE", "2")
    with pytest.raises(DistributedSetupError, match="one of 2 started by a launcher"):
        init_distributed("none")
    monkeypatch.setenv(distributed_module.ENV_MODE, "none")
    with pytest.raises(DistributedSetupError, match="one of 2"):
        init_distributed()


def test_missing_horovod_says_how_to_install_it(no_launcher, monkeypatch):
    monkeypatch.setitem(sys.modules, "horovod", None)  # makes `import horovod.tensorflow` fail
    monkeypatch.setitem(sys.modules, "horovod.tensorflow", None)
    with pytest.raises(DistributedSetupError, match=r"Horovod requested.*scripts/install_horovod\.sh"):
        init_distributed("horovod")
    monkeypatch.setenv("PMI_SIZE", "4")
    with pytest.raises(DistributedSetupError, match=r"launched as 4 processes.*HOROVOD_BUILD=gpu"):
        init_distributed("auto")


class _FakeHorovod:
    """Stands in for horovod.tensorflow: a job of ``size`` ranks as seen by rank 1."""

    def __init__(self, size: int):
        self._size = size
        self.initialised = False

    def init(self):
        self.initialised = True

    def size(self):
        return self._size

    def rank(self):
        return 1

    def local_rank(self):
        return 1

    def gloo_built(self):
        return True

    def mpi_built(self):
        return False


def install_fake_horovod(monkeypatch, size: int) -> _FakeHorovod:
    fake = _FakeHorovod(size)
    package = type(sys)("horovod")
    package.tensorflow = fake
    monkeypatch.setitem(sys.modules, "horovod", package)
    monkeypatch.setitem(sys.modules, "horovod.tensorflow", fake)
    return fake


def test_horovod_is_initialised_for_a_multi_process_launch(no_launcher, monkeypatch):
    fake = install_fake_horovod(monkeypatch, size=4)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    dist = init_distributed()
    assert fake.initialised and dist.backend == "horovod"
    assert (dist.rank, dist.size, dist.local_rank, dist.is_chief) == (1, 4, 1, False)
    assert not init_distributed(average_gradients=False).average


def test_horovod_that_does_not_see_the_other_processes_is_refused(no_launcher, monkeypatch):
    # srun started 4 processes, but a gloo-only Horovod without horovodrun sees one rank each.
    install_fake_horovod(monkeypatch, size=1)
    monkeypatch.setenv("PMI_SIZE", "4")
    with pytest.raises(
        DistributedSetupError, match=r"started 4 processes but Horovod sees 1.*HOROVOD_WITH_MPI"
    ):
        init_distributed()


def test_unknown_mode_is_rejected(no_launcher):
    with pytest.raises(DistributedSetupError, match="auto"):
        init_distributed("mpi")


def test_train_refuses_a_multi_process_launch_without_distributed(no_launcher, monkeypatch, tmp_path):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with pytest.raises(TrainingSetupError, match="distributed=init_distributed"):
        train(tiny_config(), data="builtin", out=tmp_path / "run", max_jets_per_class=40, verbose=0)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------
# sharding and steps


@pytest.mark.parametrize("n", [1, 7, 64, 65, 101, 128])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("batch_size", [1, 16, 32])
def test_shards_and_steps_cover_each_jet_at_most_once(n, size, batch_size):
    if n < size:
        with pytest.raises(DistributedSetupError):
            Distributed(rank=0, size=size).steps_per_epoch(n, batch_size)
        return
    ranks = [Distributed(rank=r, size=size) for r in range(size)]
    shards = [d.shard(n) for d in ranks]
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(n))  # disjoint and complete
    steps = {d.steps_per_epoch(n, batch_size) for d in ranks}
    assert len(steps) == 1  # every rank runs the same number of steps
    (steps,) = steps
    for shard in shards:
        assert (steps - 1) * batch_size < len(shard)  # no rank runs out of batches
    used = sum(min(len(s), steps * batch_size) for s in shards)
    smallest = n // size
    expected = n if smallest % batch_size else n - (n - smallest * size)
    assert used == expected


def test_each_rank_dataset_yields_only_its_shard(real_jets30):
    n = 50
    ids = np.zeros((n, 4), np.float32)
    ids[:, 0] = np.arange(n)
    particles = np.zeros((n, 30, 3), np.float32)
    mask = np.ones((n, 30), np.float32)
    seen = []
    for rank in range(3):
        ds = make_dataset(
            particles, ids, mask, np.zeros(n, int), batch_size=4, seed=rank, rank=rank, num_ranks=3
        )
        seen.append(np.concatenate([b["jets"][:, 0].numpy() for b in ds]).astype(int))
    assert sorted(np.concatenate(seen)) == list(range(n))


# ------------------------------------------------------------------------------------------------
# the training loop with a pretend rank (no communication)


def test_only_rank_zero_writes_and_ranks_get_disjoint_jets(no_launcher, tmp_path):
    cfg = tiny_config(epochs=2)
    dump = tmp_path / "dump"
    out = tmp_path / "run"
    train(
        cfg,
        data="builtin",
        out=out,
        max_jets_per_class=40,
        verbose=0,
        distributed=Distributed(1, 2),
        debug_dump=dump,
    )
    assert not out.exists(), "rank 1 must not write the run directory"
    assert (dump / "rank1" / "final-weights.npz").is_file()

    train(
        cfg,
        data="builtin",
        out=out,
        max_jets_per_class=40,
        verbose=0,
        distributed=Distributed(0, 2),
        debug_dump=dump,
    )
    run = RunDirectory(out)
    metadata = run.read_metadata()
    assert metadata["num_ranks"] == 2 and metadata["learning_rate_scale"] == 2
    assert [int(r["epoch"]) for r in run.read_history()] == [0, 1]
    assert run.latest_checkpoint().name == "epoch-0001"

    train_idx, valid_idx = train_valid_split(
        metadata["num_jets"], cfg.training.valid_fraction, cfg.training.seed
    )
    for epoch in range(2):
        jets0 = np.load(dump / "rank0" / f"epoch{epoch:04d}-jets.npy")
        jets1 = np.load(dump / "rank1" / f"epoch{epoch:04d}-jets.npy")
        assert not set(jets0) & set(jets1)
        assert sorted([*jets0, *jets1]) == sorted(train_idx)  # 64 jets, 32 per rank: all used once
        assert not set(jets0) & set(valid_idx)
    # shuffled differently in each epoch
    assert not np.array_equal(
        np.load(dump / "rank0" / "epoch0000-jets.npy"), np.load(dump / "rank0" / "epoch0001-jets.npy")
    )

    with pytest.raises(TrainingSetupError, match="trained with 2 rank"):
        train(None, data="builtin", out=out, resume=True, verbose=0)


def test_learning_rate_scales_with_the_number_of_ranks():
    cfg = tiny_config()
    one = make_optimizer(cfg.training, steps_per_epoch=10, num_replicas=1)
    four = make_optimizer(cfg.training, steps_per_epoch=10, num_replicas=4)
    assert float(four.learning_rate) == pytest.approx(4 * float(one.learning_rate))


class _DivergedRanks(Distributed):
    """Pretends rank 1 reports other weights than rank 0 (a model that does not average)."""

    def allgather_object(self, obj):
        if isinstance(obj, np.ndarray):
            return [obj, obj * 1.5 + 1.0]
        return [obj] * self.size


def test_ranks_with_different_weights_stop_training(no_launcher, tmp_path):
    with pytest.raises(TrainingSetupError, match="ranks hold different weights"):
        train(
            tiny_config(),
            data="builtin",
            out=tmp_path / "run",
            max_jets_per_class=40,
            verbose=0,
            distributed=_DivergedRanks(0, 2),
        )


class _ZeroGradients(Distributed):
    def average_gradients(self, gradients):
        return [None if g is None else 0.0 * g for g in gradients]


def test_model_passes_gradients_and_noise_through_the_distributed_object(real_jets30):
    from gsgm.data.preprocessing import JetPreprocessor

    cfg = tiny_config()
    sample = real_jets30.select(np.arange(0, len(real_jets30), 97)[:16])
    arrays = JetPreprocessor.fit(sample).transform(sample)
    batch = next(iter(make_dataset(*arrays, sample.labels, batch_size=16, shuffle=False)))

    def eval_loss(distributed):
        model = build_model(cfg, 30, seed=3)
        model.distributed = distributed
        model.eval_counter.assign(0)
        return float(model.test_step(batch)["loss"])

    single = eval_loss(None)
    assert eval_loss(Distributed()) == single  # one process: the noise stream is unchanged
    assert eval_loss(Distributed(0, 2)) == single  # rank 0 keeps it (counter * 2 + 0 at counter 0)
    assert eval_loss(Distributed(1, 2)) != single  # rank 1 draws other noise

    model = build_model(cfg, 30, seed=3)
    model.compile(optimizer=make_optimizer(cfg.training, steps_per_epoch=100))
    model.distributed = _ZeroGradients()
    before = [np.array(w) for w in model.jet_net.get_weights()]
    model.train_step(batch)
    after = model.jet_net.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


# ------------------------------------------------------------------------------------------------
# horovodrun -np 2 (gloo, CPU)


def horovodrun_path() -> str:
    try:
        import horovod.tensorflow  # noqa: F401
    except ImportError:
        message = "Horovod is not installed: scripts/install_horovod.sh builds it"
        if os.environ.get("GSGM_STRICT_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return str(Path(sys.executable).parent / "horovodrun")


def horovod_train(tmp_path: Path, name: str, *extra: str) -> tuple[Path, Path]:
    config = tmp_path / "tiny.json"
    if not config.exists():
        config.write_text(json.dumps(config_to_dict(tiny_config(epochs=3))))
    out, dump = tmp_path / name, tmp_path / f"{name}-dump"
    command = [
        horovodrun_path(),
        "-np",
        "2",
        "-H",
        "localhost:2",
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        "--config",
        str(config),
        "--data",
        "builtin",
        "--out",
        str(out),
        "--max-jets-per-class",
        "40",
        "--verbose",
        "0",
        "--debug-dump",
        str(dump),
        *extra,
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out, dump


def final_weights(dump: Path, rank: int) -> list[np.ndarray]:
    with np.load(dump / f"rank{rank}" / "final-weights.npz") as data:
        return [data[k] for k in data.files]


@pytest.mark.slow
@pytest.mark.xdist_group("horovod")  # two ranks each: one such test at a time
def test_horovodrun_two_ranks_average_gradients(tmp_path):
    out, dump = horovod_train(tmp_path, "averaged")
    rank0, rank1 = final_weights(dump, 0), final_weights(dump, 1)
    assert len(rank0) > 50
    for a, b in zip(rank0, rank1, strict=True):
        np.testing.assert_array_equal(a, b)  # raw, EMA and optimizer variables

    metadata = RunDirectory(out).read_metadata()
    assert metadata["num_ranks"] == 2
    history = RunDirectory(out).read_history()
    assert [int(r["epoch"]) for r in history] == [0, 1, 2]
    train_idx, _ = train_valid_split(metadata["num_jets"], 0.2, 7)
    for epoch in range(3):
        jets0 = np.load(dump / "rank0" / f"epoch{epoch:04d}-jets.npy")
        jets1 = np.load(dump / "rank1" / f"epoch{epoch:04d}-jets.npy")
        assert not set(jets0) & set(jets1), "the ranks saw the same jets"
        assert sorted([*jets0, *jets1]) == sorted(train_idx)

    # Negative control: without the allreduce each rank follows its own gradients.
    _, lonely = horovod_train(tmp_path, "not-averaged", "--debug-no-allreduce")
    lonely0, lonely1 = final_weights(lonely, 0), final_weights(lonely, 1)
    differs = [not np.array_equal(a, b) for a, b in zip(lonely0, lonely1, strict=True)]
    assert sum(differs) > len(differs) // 2
    differs = [not np.array_equal(a, b) for a, b in zip(rank0, lonely0, strict=True)]
    assert sum(differs) > len(differs) // 2
