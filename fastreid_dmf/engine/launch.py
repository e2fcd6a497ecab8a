"""Multi-process launch for ``tools/train_net.py``: fast-reid's ``launch`` on GPUs (NCCL) or CPUs (gloo), or
started by ``torchrun``.

fast-reid's ``fastreid/engine/launch.py`` asserts CUDA and hard-codes the NCCL backend, so ``--num-gpus 2``
cannot run on a CPU machine (nor be tested there), and it cannot join a job started by ``torchrun``
(``env://`` rendezvous: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``), which is how SLURM or Kubernetes jobs start today. This module does what fast-reid's does
(spawn one process per device, join the process group, make fast-reid's per-machine group
``comm._LOCAL_PROCESS_GROUP``, then run ``main``) with:

* backend NCCL when every local process gets its own GPU, else gloo (one process per CPU "device");
* ``torchrun``: when ``WORLD_SIZE`` > 1 is in the environment, nothing is spawned: this process joins with
  ``env://`` and the ``--num-gpus`` / ``--num-machines`` / ``--machine-rank`` / ``--dist-url`` flags are
  ignored (torchrun's own say how many processes there are).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fastreid.utils import comm

__all__ = ["launch", "choose_backend", "torchrun_world"]

logger = logging.getLogger(__name__)


def choose_backend(local_processes: int) -> str:
    """"nccl" when CUDA has at least one GPU per local process, else "gloo" (CPU processes)."""
    return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= local_processes else "gloo"


def torchrun_world() -> tuple[int, int, int, int] | None:
    """``(rank, world_size, local_rank, local_world_size)`` when started by ``torchrun`` with several processes.

    Raises:
        ValueError: ``WORLD_SIZE`` set without ``RANK`` / ``LOCAL_RANK`` (names the missing variables).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    missing = [name for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={world} in the environment but {', '.join(missing)} missing; start the job "
                         "with torchrun (or unset WORLD_SIZE and use --num-gpus)")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return int(os.environ["RANK"]), world, int(os.environ["LOCAL_RANK"]), local_world


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join(rank: int, world: int, local_rank: int, local_world: int, init_method: str) -> None:
    """Join the process group, pick this process's GPU, build fast-reid's per-machine process group."""
    backend = choose_backend(local_world)
    dist.init_process_group(backend=backend, init_method=init_method, world_size=world, rank=rank)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if comm._LOCAL_PROCESS_GROUP is not None:
        raise RuntimeError("a process group for this machine exists already; launch() was called twice")
    machine = rank // local_world
    for index in range(world // local_world):
        group = dist.new_group(list(range(index * local_world, (index + 1) * local_world)))
        if index == machine:
            comm._LOCAL_PROCESS_GROUP = group
    comm.synchronize()
    if rank == 0:
        logger.info("process group: %d processes, backend %s (%s)", world, backend, init_method)


def _worker(local_rank: int, main: Callable, world: int, local_world: int, machine_rank: int, dist_url: str,
            args: Sequence) -> None:
    _join(machine_rank * local_world + local_rank, world, local_rank, local_world, dist_url)
    main(*args)


def launch(main: Callable, num_processes: int, num_machines: int = 1, machine_rank: int = 0,
           dist_url: str | None = None, args: Sequence = ()) -> None:
    """Run ``main(*args)`` in every process of the job (fast-reid's ``launch`` with gloo and torchrun).

    Args:
        main: the per-process body (``train_or_eval``'s caller).
        num_processes: processes on this machine (fast-reid's ``--num-gpus``; CPU processes without GPUs).
        num_machines, machine_rank, dist_url: as fast-reid's (``dist_url`` "auto": a free local port).

    Raises:
        ValueError: ``num_processes`` < 1, ``dist_url`` "auto" with several machines, an incomplete torchrun
            environment.
    """
    started = torchrun_world()
    if started is not None:
        rank, world, local_rank, local_world = started
        _join(rank, world, local_rank, local_world, "env://")
        main(*args)
        return
    if num_processes < 1:
        raise ValueError(f"--num-gpus {num_processes}: expected at least one process")
    world = num_machines * num_processes
    if world == 1:
        main(*args)
        return
    if dist_url in (None, "auto"):
        if num_machines > 1:
            raise ValueError("--dist-url auto works on one machine only; give tcp://<host of rank 0>:<port>")
        dist_url = f"tcp://127.0.0.1:{_free_port()}"
    mp.spawn(_worker, nprocs=num_processes, args=(main, world, num_processes, machine_rank, dist_url, tuple(args)),
             daemon=False)
