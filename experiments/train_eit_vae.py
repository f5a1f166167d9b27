"""Train the EIT lung-phantom VAE (128x128, k = 8); see ``experiments/configs/train.py``.

    python experiments/train_eit_vae.py --workdir runs/eit-vae --max-minutes 50
    python experiments/train_eit_vae.py --workdir runs/eit-vae --resume --export checkpoints/eit-vae
"""

from configs.train import run

NAME = "eit-vae"


def main(argv=None):
    run(NAME, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
