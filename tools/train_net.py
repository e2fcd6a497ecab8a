#!/usr/bin/env python
"""Train / evaluate DMF with fast-reid's trainer: same flags as fast-reid's ``tools/train_net.py``.

    python tools/train_net.py --config-file configs/demo/dmf_pretrain.yml [--eval-only] [--resume]
        [--num-gpus N] [KEY VALUE ...]
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastreid_dmf  # noqa: E402,F401  (first: patches fastreid, registers DMF components)

# isort: split
from fastreid.engine import default_argument_parser, launch  # noqa: E402
from fastreid.utils.checkpoint import Checkpointer  # noqa: E402

from fastreid_dmf.engine import DMFTrainer, setup_cfg  # noqa: E402
from fastreid_dmf.engine.trainer import save_results  # noqa: E402


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        cfg.defrost()
        cfg.MODEL.BACKBONE.PRETRAIN = False
        if cfg.MODEL.WEIGHTS and not os.path.isfile(cfg.MODEL.WEIGHTS):
            raise FileNotFoundError(f"MODEL.WEIGHTS={cfg.MODEL.WEIGHTS!r} is not a file")
        model = DMFTrainer.build_model(cfg)
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
        results = DMFTrainer.test(cfg, model)
    else:
        trainer = DMFTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        results = trainer.train()
    save_results(results, cfg.OUTPUT_DIR, "results.json")
    return results


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))
