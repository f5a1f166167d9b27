"""Train the MRI GAN (MNI152 axial slices 64x64, k = 16; non-saturating loss + R1); see ``experiments/configs/train.py``.

    python experiments/train_mri_gan.py --workdir runs/mri-gan --max-minutes 50
    python experiments/train_mri_gan.py --workdir runs/mri-gan --resume --export checkpoints/mri-gan
"""

from configs.train import run

NAME = "mri-gan"


def main(argv=None):
    run(NAME, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
