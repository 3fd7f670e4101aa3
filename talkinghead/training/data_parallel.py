"""Training across processes (`torchrun --nproc-per-node N talkinghead train ...`), data-parallel.

Every process holds the whole model and draws the whole global batch from the same seeded stream, then
keeps its own share of the rows (`shard`): the processes together see exactly the batches one process
would. Their gradients are averaged after each backward pass, as DistributedDataParallel does; we
average them ourselves because the trainers call sub-networks (encoders, prior, blink head), not one
`forward`, which DDP needs. What couples the rows of a batch is made global too, so the loss is the one a
single process computes: batch-norm statistics (`SharedBatchNorm`), loss denominators such as
"valid frames in the batch" (`rank_mean`) and contrastive negatives from the other rows (`gather_rows`).
Dropout and sampling noise are drawn per process (other seeds), so with them the runs are equal in
distribution, not in value.

In one process (the normal case, also `torchrun --nproc-per-node 1`) every function here is the identity
and nothing changes. Rank 0 validates, logs and writes files; the others wait for its figures.

Where CUDA is available (`choose_backend`) each process trains on its own GPU, the one torchrun's LOCAL_RANK
names, and the processes talk over nccl; elsewhere on the CPU over gloo. `prepare` puts the model there and
`shard` the batches; validation and the written weights stay on the CPU (`loop.fit` moves the model). The GPU
path is untested here (the project's machine has no GPU): `TALKINGHEAD_TRAIN_DEVICE=cpu` keeps training on
the CPU whatever is installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from talkinghead.errors import TalkingHeadError

_in_step = False  # inside a training step whose batch is split over the processes
_device = torch.device("cpu")  # where this process trains (`processes` chooses it)


class UnevenBatch(TalkingHeadError):
    """The global batch does not split into equal shares, one per process."""


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    """The process that validates, logs and writes (the only one without torchrun)."""
    return rank() == 0


def choose_backend(cuda_available: bool, local_rank: int = 0, forced: str = "") -> tuple[str, torch.device]:
    """The process group's backend and this process's device: nccl and GPU `local_rank` (torchrun's
    LOCAL_RANK: the process's number on its machine) where CUDA is available, gloo and the CPU elsewhere or
    when `forced` is "cpu" (TALKINGHEAD_TRAIN_DEVICE)."""
    if forced not in ("", "cpu", "cuda"):
        raise ValueError(f"TALKINGHEAD_TRAIN_DEVICE must be cpu or cuda, not {forced!r}.")
    if forced == "cuda" and not cuda_available:
        raise ValueError("TALKINGHEAD_TRAIN_DEVICE=cuda, but this torch sees no CUDA device.")
    if cuda_available and forced != "cpu":
        return "nccl", torch.device("cuda", local_rank)
    return "gloo", torch.device("cpu")


def device() -> torch.device:
    """Where this process trains (inside `processes`)."""
    return _device


@contextmanager
def processes() -> Iterator[None]:
    """Choose this process's device (`choose_backend`) and, under torchrun with WORLD_SIZE > 1, join the
    process group it describes in the environment; on leaving, back to the CPU."""
    global _device
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if dist.is_initialized():
        yield
        return
    forced = os.environ.get("TALKINGHEAD_TRAIN_DEVICE", "")
    backend, dev = choose_backend(torch.cuda.is_available(), int(os.environ.get("LOCAL_RANK", "0")), forced)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # collectives and object messages use the current device
    _device = dev
    try:
        if size <= 1:
            yield
            return
        dist.init_process_group(backend)
        try:
            yield
            # leave together: rank 0 may still be writing the weights, and a process that tears its connections
            # down while a peer still uses them is aborted by gloo (SIGABRT; torchrun would then stop rank 0 too)
            dist.barrier(device_ids=[dev.index]) if dev.type == "cuda" else dist.barrier()
        finally:
            dist.destroy_process_group()
    finally:
        _device = torch.device("cpu")


@contextmanager
def training_step() -> Iterator[None]:
    """Marks the forward pass of a training step: only there is the batch split (validation is whole, on rank 0)."""
    global _in_step
    before, _in_step = _in_step, True
    try:
        yield
    finally:
        _in_step = before


def _split() -> bool:
    return _in_step and world_size() > 1


def shard(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """This process's rows of a global batch (every tensor batch-first), on this process's device."""
    batch = tuple(t.to(_device) for t in batch)
    if not _split():
        return batch
    n, size = batch[0].shape[0], world_size()
    if n % size:
        raise UnevenBatch(f"The batch of {n} does not split evenly over {size} processes; use a multiple of {size}.")
    share = n // size
    return tuple(t[rank() * share : (rank() + 1) * share] for t in batch)


class _Sum(torch.autograd.Function):
    """Sum over the processes; the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.detach().clone().contiguous()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone().contiguous()
        dist.all_reduce(out)
        return out


class _Gather(torch.autograd.Function):
    """Every process's rows, in rank order; each gets back the gradient of its own rows from all losses."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.detach().contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone().contiguous()
        dist.all_reduce(out)
        share = out.shape[0] // world_size()
        return out[rank() * share : (rank() + 1) * share]


def rank_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of `x` over the processes. A loss `part / rank_mean(count)` averages over the processes to
    `sum of parts / sum of counts`: the one-process loss of the whole batch."""
    return _Sum.apply(x) / world_size() if _split() else x


def gather_rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(the rows of the whole batch, the index of this process's first row among them)."""
    if not _split():
        return x, 0
    return _Gather.apply(x), rank() * x.shape[0]


class SharedBatchNorm(nn.BatchNorm1d):
    """Batch norm whose training statistics are those of the whole batch across the processes (torch's
    SyncBatchNorm runs on GPUs only). Outside a split training step it is a plain BatchNorm1d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _split()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = float(_Sum.apply(torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)))
        mean = _Sum.apply(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = _Sum.apply((centred * centred).sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * count / max(count - 1, 1))
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def prepare(model: nn.Module) -> None:
    """Before training: the model on this process's device; across processes, every process starts from
    rank 0's weights, batch norm uses the whole batch, and each process draws its own dropout/noise (seed + rank)."""
    model.to(_device)
    if world_size() == 1:
        return
    for module in model.modules():
        if type(module) is nn.BatchNorm1d:
            module.__class__ = SharedBatchNorm  # same parameters and buffers, so the same state dict
    for t in [*model.parameters(), *model.buffers()]:
        dist.broadcast(t.data, 0)
    if rank() > 0:
        torch.manual_seed(torch.initial_seed() + rank())


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """Average the gradients over the processes (one message for all of them), as DDP does."""
    if world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(value: float) -> float:
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_device)
    dist.all_reduce(t)
    return float(t) / world_size()


def from_main(obj: Any) -> Any:
    """Rank 0's `obj`, on every process."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every process's `obj`, in rank order."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
