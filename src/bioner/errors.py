"""The project's exception types.

Every error a user can cause is one of these, with a message that says what is wrong and
what to do; the CLI prints the message and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations

from pathlib import Path


class BionerError(Exception):
    """Base class: anything bioner raises on purpose."""


class CorpusFormatError(BionerError):
    """A corpus file breaks its format; always carries the place as ``path:line``."""

    def __init__(self, path: str | Path, line: int, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.path}:{line}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        # picklable, so the error survives the trip back from a worker process (Ray, torchrun)
        return (self.__class__, (self.path, self.line, self.problem))


class BioSchemeError(BionerError):
    """An invalid BIO transition met while ``strict`` BIO decoding was asked for."""


class DatasetNotFoundError(BionerError):
    """A dataset name or path that resolves to no readable split files."""


class ConfigError(BionerError):
    """A run configuration or experiment spec that does not validate."""


class EvaluationError(BionerError):
    """Gold and predictions cannot be compared (different sentences or tokens)."""


class ModelError(BionerError):
    """A model folder, checkpoint or label set that cannot be used as asked."""


class TrainingError(BionerError):
    """Training cannot go on (a non-finite loss, say); the run folder keeps its last good state."""


class InputError(BionerError):
    """A command-line value or input text that cannot be used (names the value)."""
