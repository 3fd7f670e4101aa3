"""Training: datasets, losses, loops. Inference code never imports this package."""
