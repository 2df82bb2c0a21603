"""How any module is trained and run; knows nothing of what a VAE is."""
