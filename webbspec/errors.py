"""One error type for bad input: its message is one line naming the file and the problem."""

__all__ = ["InputError"]


class InputError(Exception):
    """Bad input data, association, parameter or reference file.

    ``str(err)`` is ``"<path>: <problem>"`` on one line, which is what the command line prints.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")
