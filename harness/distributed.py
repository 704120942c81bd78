"""torch.distributed, when the harness is launched by ``torchrun`` or ``accelerate launch``.

Both launchers set ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and the rendezvous address); with
those present the process group is started on first use (NCCL with GPUs, gloo on the CPU), and every
helper here is a no-op in a plain single process. Rank 0 alone writes run records, checkpoints and the
results database; evaluation is sharded over ranks and gathered on rank 0, training is data-parallel.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from harness.errors import HarnessError

# torch is imported where a process group is used, not here: commands that never compute (table,
# compare, list) import this module and start in a fraction of a second without it.


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def enabled() -> bool:
    return world_size() > 1


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init(device: str | None = None) -> None:
    """Start the process group once (no-op when not launched by torchrun / accelerate launch)."""
    if not enabled():
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    cuda = torch.cuda.is_available() and (device in (None, "auto") or str(device).startswith("cuda"))
    if cuda:
        torch.cuda.set_device(local_rank())
    try:
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    except (RuntimeError, ValueError) as err:
        raise HarnessError(f"torch.distributed could not start (rank {rank()} of {world_size()}): {err}") from None


def device_for_rank(device: str | None) -> str | None:
    """Each process its own GPU: 'auto' or 'cuda' becomes cuda:LOCAL_RANK under a launcher."""
    import torch

    if enabled() and torch.cuda.is_available() and device in (None, "auto", "cuda"):
        return f"cuda:{local_rank()}"
    return device


def barrier() -> None:
    if enabled():
        import torch.distributed as dist

        dist.barrier()


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (any picklable value built by the harness itself)."""
    if not enabled():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any) -> list[Any] | None:
    """Every rank's ``obj``, in rank order, on rank 0; None elsewhere."""
    if not enabled():
        return [obj]
    import torch.distributed as dist

    out = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_reduce_sum(value: float) -> float:
    if not enabled():
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item())


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (a one-time conversion or download), then the others."""
    if is_main():
        yield
        barrier()
    else:
        barrier()
        yield


def shard(items: list, n_batches_of: int) -> tuple[list, int]:
    """This rank's share of ``items`` (every world_size-th, starting at its rank) and the number of
    batches of ``n_batches_of`` every rank must step through, so collective calls stay in lock-step."""
    mine = items[rank() :: world_size()]
    longest = -(-len(items) // world_size())
    return mine, -(-longest // n_batches_of)
