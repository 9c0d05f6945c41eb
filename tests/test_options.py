"""robustrep._options: constructor options from docstrings and signatures."""

from robustrep import _options


def test_args_sections_are_read_with_continuations():
    doc = """Summary.

    Args:
        alpha (float): first line
            continued: still alpha.

        beta: second.
        plain text at the entry's indent
    Returns:
        nothing: here.
    """
    assert _options.arg_help(doc) == {
        "alpha": "first line continued: still alpha.",
        "beta": "second. plain text at the entry's indent"}
    assert _options.arg_help(None) == {} and _options.summary(None) == ""
    assert _options.summary("\n  Title line.\n  more\n") == "Title line."
