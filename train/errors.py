"""The error type of the training side: bad input, reported as one line, never a traceback."""


class TrainError(ValueError):
    """Training cannot start or continue as asked; the message says why and names the path."""
