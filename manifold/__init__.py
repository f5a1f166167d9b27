"""manifold: inverse problems in medical imaging solved on a learned low-dimensional manifold."""

__version__ = "0.1.0"
