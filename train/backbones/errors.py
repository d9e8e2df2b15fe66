"""The one error type of the backbones package."""


class BackboneError(ValueError):
    """A backbone cannot be built as asked (unknown name, size too small, bad weights)."""
