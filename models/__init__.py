"""ETA: base-ETA providers, residual quantile models, calibration, registry, training, serving."""
