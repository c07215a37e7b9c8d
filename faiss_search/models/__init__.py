"""Known embedding models (registry), where they live locally, and how to download them."""
