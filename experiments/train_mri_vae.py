"""Train the MRI VAE (MNI152 axial slices 64x64, k = 16); see ``experiments/configs/train.py``.

    python experiments/train_mri_vae.py --workdir runs/mri-vae --max-minutes 50
    python experiments/train_mri_vae.py --workdir runs/mri-vae --resume --export checkpoints/mri-vae
"""

from configs.train import run

NAME = "mri-vae"


def main(argv=None):
    run(NAME, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
