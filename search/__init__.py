"""dnac.search: the co-search front-end (supernet, precision search, co-search loop)."""
