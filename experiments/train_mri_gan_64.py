"""Train the small MRI GAN ``mri-gan-64`` (MNI152 axial slices 64x64, k = 16; non-saturating loss + R1); see ``experiments/configs/train.py``.

    python experiments/train_mri_gan_64.py --workdir runs/mri-gan-64 --max-minutes 50
    python experiments/train_mri_gan_64.py --workdir runs/mri-gan-64 --resume --export checkpoints/mri-gan-64
"""

from configs.train import run

NAME = "mri-gan-64"


def main(argv=None):
    run(NAME, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
