"""Fine-tune ``mri-vae`` as a VAE-GAN with the spectral penalty (128x128, k = 256; shipped as ``mri-gan``).

    python experiments/train_mri_gan.py --workdir runs/mri-gan --max-minutes 60
    python experiments/train_mri_gan.py --workdir runs/mri-gan --resume --export checkpoints/mri-gan
"""

from configs.train import run

NAME = "mri-gan"


def main(argv=None):
    run(NAME, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
