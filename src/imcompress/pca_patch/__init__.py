"""pca_patch."""
