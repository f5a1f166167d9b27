"""Train the EIT lung-phantom VAE (128x128, k = 8); see ``experiments/configs/train.py``.

    python experiments/train_eit_vae.py --workdir runs/eit-vae --max-minutes 50
    python experiments/train_eit_vae.py --workdir runs/eit-vae --resume --export checkpoints/eit-vae
"""

import argparse

from configs.train import add_arguments, config_from_args

from manifold.train import export_generator, train

NAME = "eit-vae"


def main(argv=None):
    args = add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args(argv)
    cfg = config_from_args(NAME, args)
    result = train(cfg, args.workdir, resume=args.resume)
    print(f"{NAME}: step {result.step}, {result.wall_seconds:.0f} s, held-out {result.metrics}")
    if args.export is not None:
        card = export_generator(args.workdir, args.export, name=NAME, overwrite=True)
        print(f"exported to {args.export}: held-out {card['heldout']}")


if __name__ == "__main__":
    main()
