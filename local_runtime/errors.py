"""The two ways a step ends badly, shared by every module of the runtime."""


class StepFailed(Exception):
    """The step ran and failed; the message is its failure reason."""


class DefinitionError(ValueError):
    """The definition uses something the local runtime does not support, or is invalid."""
