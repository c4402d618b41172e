"""User-facing errors. The command line prints their message and exits with code 2, no traceback."""


class StudyError(Exception):
    """An error caused by the user's input (files, study definition, arguments), not by a bug."""

    exit_code = 2


class StudyDefinitionError(StudyError):
    """study.yml is missing, unreadable or breaks a rule."""


class DataFileError(StudyError):
    """A raw data file is missing, unreadable, empty, undecodable or lacks required columns."""
