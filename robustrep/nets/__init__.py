"""Networks, one module per family."""
