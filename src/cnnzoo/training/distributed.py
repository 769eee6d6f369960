"""Data-parallel training on several processes, GPUs and nodes with PyTorch's own engine:
``torchrun`` starts the processes and ``DistributedDataParallel`` (DDP) averages gradients.

    torchrun --nproc_per_node=2 -m cnnzoo train lenet5_modern --batch-size 128

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`make_trainer` returns a
:class:`DistributedTrainer`, the single-process :class:`~cnnzoo.training.trainer.Trainer` with
its distributed seam filled in:

- Process group from torchrun's variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...),
  backend chosen by device: NCCL for CUDA models, Gloo on CPU. On CPU each process uses
  (usable cores / processes on the node) threads.
- Sharding: every rank computes the same seeded permutation of the epoch and takes its
  contiguous share of each global batch (:func:`cnnzoo.data.batch_slices`), so the ranks'
  samples are disjoint and their union is the one-process epoch (DistributedSampler
  semantics without its padding: no sample is repeated).
- Global batch = ``batch_size`` x ``WORLD_SIZE``; ``batch_size`` stays per process and the
  learning rate is used as given for the global batch (no automatic scaling). A run with
  ``--batch-size B`` on W processes takes the same steps as one process with ``B x W``.
- Gradients: each rank's gradient is weighted by its share of the global batch (a DDP
  communication hook), so the update is the gradient of the mean loss over the global batch,
  exactly as in one process, also for a short last batch.
- ``sync_bn``: BatchNorm statistics over the global batch (``nn.SyncBatchNorm`` on GPUs,
  :class:`CPUSyncBatchNorm` on CPU, where PyTorch's version does not run).
- Metrics are summed over ranks; evaluation is sharded over ranks and reduced. Only rank 0
  writes checkpoints, metrics files and the progress bar.
- Resume: rank 0's checkpoint holds the full state (DDP keeps parameters identical); every
  rank loads it from ``--out``, which must be the same path for all ranks (a shared
  file system across nodes).
- Failure: an exception in a rank is printed as one line naming the rank
  (:func:`rank_errors`) and ends the process; torchrun then stops the other ranks and exits
  non-zero. Checkpoints are written atomically, so the last good one survives.
- Ctrl-C: torchrun passes SIGINT to the ranks; a checkpoint is kept consistent (all ranks
  hold the same weights after every step), usually the last end-of-epoch one. If rank 0
  does save mid-epoch, a resume restores rank 0's running sums of that epoch on every rank,
  so that epoch's train loss/accuracy are an estimate (the weights are exact).

Source: PyTorch, "Getting started with DistributedDataParallel" and the torchrun docs;
Goyal et al. 2017, "Accurate, Large Minibatch SGD" (global batch, linear LR scaling).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .._text import plural
from ..numerics import usable_cores
from .config import TrainConfig, TrainConfigError
from .trainer import Trainer


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a torchrun job (all 0/1 when not launched by torchrun)."""

    rank: int              # global process index, 0 .. world_size - 1
    world_size: int        # processes in the job (all nodes)
    local_rank: int        # index on this node (GPU index)
    local_world_size: int  # processes on this node


def dist_env() -> DistEnv:
    """torchrun's environment variables as a :class:`DistEnv`."""
    e = os.environ
    return DistEnv(int(e.get("RANK", 0)), int(e.get("WORLD_SIZE", 1)), int(e.get("LOCAL_RANK", 0)),
                   int(e.get("LOCAL_WORLD_SIZE", 1)))


def launched() -> bool:
    """True in a process started by torchrun with more than one process in the job."""
    return dist_env().world_size > 1


def make_trainer(config: TrainConfig, out_dir, progress: bool = True) -> Trainer:
    """A :class:`DistributedTrainer` under torchrun (``WORLD_SIZE`` > 1), else a :class:`Trainer`."""
    return (DistributedTrainer if launched() else Trainer)(config, out_dir, progress=progress)


@contextmanager
def rank_errors():
    """Print an exception of a torchrun worker as one line naming its rank, then re-raise it
    (torchrun stops the other ranks and exits non-zero); shut the process group down at the
    end. A no-op outside torchrun."""
    if not launched():
        yield
        return
    env = dist_env()
    try:
        yield
    except Exception as err:
        hint = (" (probably because another rank failed; see its message)"
                if isinstance(err, dist.DistBackendError) or "Connection closed" in str(err) else "")
        first = str(err).splitlines()[0] if str(err) else ""
        print(f"cnnzoo: rank {env.rank} of {env.world_size} failed: {type(err).__name__}: {first}{hint}",
              file=sys.stderr, flush=True)
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class _ShareState:
    weight: float = 1.0    # this rank's samples / the global batch's samples, this step


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient. The global loss is sum_r w_r L_r (w_r: rank r's
    share) and each rank backpropagates its own L_r, which the DDP hook then scales by w_r;
    so rank r's gradient of the sum is (sum_q w_q dL_q/dsum) / w_r."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, share: _ShareState) -> torch.Tensor:
        ctx.weight = share.weight
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad * ctx.weight
        dist.all_reduce(grad)
        return grad / ctx.weight, None


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are the mean and (biased) variance over the
    global batch of all processes, with gradients through the reduction: on CPU, where
    ``nn.SyncBatchNorm`` raises.

    Shapes: input and output (N, C, H, W). Running statistics are updated as in
    ``nn.BatchNorm2d`` with the unbiased global variance, so all ranks keep the same ones.
    Outside a process group, or in eval mode, it is a plain BatchNorm2d. ``share`` is the
    trainer's per-step share of the global batch (gradients exact for unequal shares).
    """

    share = _ShareState(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        xf = x.float()
        n_local = x.numel() // c
        stats = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), xf.new_full((1,), n_local)])
        stats = _SumOverRanks.apply(stats, self.share)                       # (2C + 1,) summed over ranks
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)    # biased, as BN normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, m)
                self.running_var.lerp_(var * n / (n - 1).clamp_min(1), m)
        y = (xf - mean.view(1, c, 1, 1)) * torch.rsqrt(var.view(1, c, 1, 1) + self.eps)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y.to(x.dtype)


def convert_sync_batchnorm(model: nn.Module, cuda: bool, share: _ShareState | None = None) -> nn.Module:
    """Replace every BatchNorm2d by its synchronised version (same parameters and buffers,
    same state_dict keys): ``nn.SyncBatchNorm`` for CUDA models, :class:`CPUSyncBatchNorm` on CPU."""
    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = CPUSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            if child.affine:
                sync.weight, sync.bias = child.weight, child.bias   # keep the very Parameters
            sync.share = share or sync.share
            setattr(model, name, sync.train(child.training))
        else:
            convert_sync_batchnorm(child, cuda, share)
    return model


class _AuxForward(nn.Module):
    """Lets DDP see GoogLeNet's auxiliary heads: ``forward(x, aux=True)`` calls the model's
    ``forward_with_aux`` inside DDP's forward (so gradients are synchronised)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, aux: bool = False):
        return self.model.forward_with_aux(x) if aux else self.model(x)


class _DDP(DistributedDataParallel):
    def forward_with_aux(self, x: torch.Tensor):
        return self(x, aux=True)


def _weighted_allreduce(state, bucket):
    """DDP comm hook (state: _ShareState, bucket: dist.GradBucket -> Future): the sum over ranks
    of (share x local mean-loss gradient) = the gradient of the mean loss over the global batch.
    (No annotations: DDP checks them, and this module's are strings.)"""
    buf = bucket.buffer().mul_(state.weight)
    return dist.all_reduce(buf, async_op=True).get_future().then(lambda f: f.value()[0])


class DistributedTrainer(Trainer):
    """A :class:`Trainer` for one rank of a torchrun job (see the module docstring).

    Args:
        config, out_dir, progress: as for :class:`Trainer`; rank and world size come from torchrun.

    Raises:
        TrainConfigError: the last global batch has fewer samples than there are processes
            (some rank would get none); change ``batch_size`` or ``limit_train``.
    """

    def __init__(self, config: TrainConfig, out_dir, progress: bool = True):
        env = self.env = dist_env()
        self.share = _ShareState()                # set per step by batch(), read by the DDP hook
        if not torch.cuda.is_available():
            torch.set_num_threads(max(1, usable_cores() // env.local_world_size))
        super().__init__(config, out_dir, progress, rank=env.rank, world_size=env.world_size)
        n, gb = len(self.train), self.cfg.batch_size * env.world_size
        if 0 < n % gb < env.world_size:
            raise TrainConfigError(f"the last global batch has {plural(n % gb, 'image')} for {env.world_size} processes; "
                                   f"change --batch-size or --limit-train so that each process gets one")
        device = next(self.model.parameters()).device
        if device.type == "cuda":
            torch.cuda.set_device(device)         # NCCL uses the current device
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        has_aux = hasattr(self.model, "forward_with_aux")
        self.train_model = _DDP(_AuxForward(self.model), device_ids=[device.index] if device.type == "cuda" else None,
                                find_unused_parameters=has_aux and not self.use_aux)
        self.train_model.register_comm_hook(self.share, _weighted_allreduce)

    def build_model(self) -> nn.Module:
        model = super().build_model()
        if self.cfg.sync_bn:
            model = convert_sync_batchnorm(model, next(model.parameters()).is_cuda, self.share)
        return model

    def batch_seed(self, seed: int) -> int:
        """Own random draws per rank (crops, flips, erasing, dropout); rank 0 keeps the step's seed."""
        return (seed * 1009 + self.rank) % (1 << 63) if self.rank else seed

    def should_step(self, n: int) -> bool:
        """Every rank steps, or none: not when any rank's share is a single image or none."""
        return bool(self._all_reduce_min(torch.tensor(n)) > 1)

    def _all_reduce_min(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, copy=True)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return t.cpu()

    def gather_skipped(self) -> None:
        """Every rank learns the unreadable files the others' streams met (rank 0 names and records them)."""
        everyone = [None] * self.world_size
        dist.all_gather_object(everyone, self.skipped_files())
        for files in everyone:
            self.more_skipped.update(files)

    def before_step(self, step: int, sl: slice) -> None:
        """This rank's share of the global batch, the weight of its gradient in the all-reduce."""
        gb = self.cfg.batch_size * self.world_size
        self.share.weight = (sl.stop - sl.start) / min(gb, len(self.train) - step * gb)

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if dist.is_initialized() else None

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, copy=True)          # NCCL reduces CUDA tensors only
        dist.all_reduce(t)
        return t.cpu()

    def evaluate(self, tta: str | None = None, split: str = "test") -> dict:
        """Test (or ``"val"``) metrics with rank 0's BatchNorm statistics, each rank evaluating its shard."""
        for b in self.eval_model.buffers():
            dist.broadcast(b, 0)
        images = self.eval_set(split)
        n = len(images)
        lo, hi = self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size
        m = self.evaluate_on(images.subset(torch.arange(lo, hi)), tta)
        res = self._gather_metrics(m, hi - lo, n)
        if tta:
            res["tta"] = self._gather_metrics(m["tta"], hi - lo, n)
        return res

    def _gather_metrics(self, m: dict, k: int, n: int) -> dict:
        """One view's metrics of the whole test set from each rank's ``m`` over its ``k`` of ``n`` images."""
        sums = self._all_reduce(torch.tensor([m["loss"] * k, m["top5"] * k], dtype=torch.float64))
        conf = self._all_reduce(m["confusion"])
        total = max(1, n)
        return {"loss": float(sums[0]) / total, "top1": float(conf.diag().sum()) / total,
                "top5": float(sums[1]) / total, "confusion": conf, "n": n}

    def estimate_epochs(self, budget_s: float, probe_steps: int = 8) -> int:
        """Rank 0's estimate, shared with all ranks (they must run the same number of epochs)."""
        est = torch.tensor([super().estimate_epochs(budget_s, probe_steps)])
        dist.broadcast(est, 0)
        return int(est)
