"""Image-classification training: config, trainer loop, callbacks and the `run_train` pipeline."""
