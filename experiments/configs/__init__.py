"""Configuration dataclasses of the experiment scripts."""
