"""Models: features, the stage-1 linear classifier, calibration and artifacts."""
