#!/usr/bin/env python
"""Train / evaluate DMF with fast-reid's trainer: same flags as fast-reid's ``tools/train_net.py``.

    python tools/train_net.py --config-file configs/demo/dmf_pretrain.yml [--eval-only] [--resume]
        [--num-gpus N] [KEY VALUE ...]
    torchrun --nproc-per-node N tools/train_net.py --config-file ...      (torch.distributed, env://)

``--num-gpus N`` starts N processes: one per GPU (NCCL), or N CPU processes (gloo) on a machine without
enough GPUs (fastreid_dmf/engine/launch.py). Under torchrun the process count is torchrun's.

A bad input (config value, path, checkpoint, dataset name) ends the run with exit code 1 and one
line ``train_net.py: error: <message>`` on stderr; the traceback goes to ``OUTPUT_DIR/log.txt``
when the logger is set up. Set ``FASTREID_DMF_TRACEBACK=1`` to print it too.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastreid_dmf  # noqa: E402,F401  (first: patches fastreid, registers DMF components)

# isort: split
from fastreid.engine import default_argument_parser  # noqa: E402

from fastreid_dmf.engine.cli import run_cli  # noqa: E402
from fastreid_dmf.engine.launch import launch  # noqa: E402
from fastreid_dmf.engine.trainer import train_or_eval  # noqa: E402


def main(args):
    return train_or_eval(args)


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    run_cli(lambda: launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                           dist_url=args.dist_url, args=(args,)), prog="train_net.py")
