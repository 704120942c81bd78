"""Training a model: training sequences, the training loop, checkpoints and the loss log."""
