"""The mathematics: likelihoods, priors, networks and the modules whose forward is the loss.

Knows nothing of estimators, files, devices or processes."""
