"""Evaluation: metrics with confidence intervals over scored, labelled records."""
