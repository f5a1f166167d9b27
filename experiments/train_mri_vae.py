"""Train the MRI VAE (128x128, k = 256: synthetic MR + MNI152 slices); see ``experiments/configs/train.py``.

    python experiments/train_mri_vae.py --workdir runs/mri-vae --max-minutes 50
    python experiments/train_mri_vae.py --workdir runs/mri-vae --resume --export checkpoints/mri-vae
"""

from configs.train import run

NAME = "mri-vae"


def main(argv=None):
    run(NAME, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
