"""``robustrep report``: every chosen regularizer on the three tasks, over seeds, on one page."""
