"""Train the MRI GAN (MNI152 axial slices 64x64, k = 16; non-saturating loss + R1); see ``experiments/configs/train.py``.

    python experiments/train_mri_gan.py --workdir runs/mri-gan --max-minutes 50
    python experiments/train_mri_gan.py --workdir runs/mri-gan --resume --export checkpoints/mri-gan
"""

import argparse

from configs.train import add_arguments, config_from_args

from manifold.train import export_generator, train

NAME = "mri-gan"


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
