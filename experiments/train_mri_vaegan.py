"""Fine-tune ``mri-vae`` as a VAE-GAN with the spectral penalty (128x128, k = 256; shipped as ``mri-vaegan``).

    python experiments/train_mri_vaegan.py --workdir runs/mri-vaegan --max-minutes 60
    python experiments/train_mri_vaegan.py --workdir runs/mri-vaegan --resume --export checkpoints/mri-vaegan
"""

from configs.train import run

NAME = "mri-vaegan"


def main(argv=None):
    run(NAME, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
