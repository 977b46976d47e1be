"""The app's own package, copied as the seed's builder copies src/."""

NAME = "hardened-python"
