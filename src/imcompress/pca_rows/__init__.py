"""pca_rows."""
