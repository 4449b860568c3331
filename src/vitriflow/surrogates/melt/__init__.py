"""Physics-guided melt/glass property surrogate (features, equations, network, estimator, report)."""
