"""frozen-harness: train and evaluate visual-prefix ("Frozen") vision-language models."""

__version__ = "0.1.0"
