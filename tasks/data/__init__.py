"""``robustrep data``: dataset files in the formats other projects read (stylegan2-ada zips)."""
