"""Typed engine errors.

Each part raises these; the API maps ``status`` onto the HTTP status code and
``str(exc)`` onto Docker's ``{"message": ...}`` body.  Messages are for users:
they say what was wrong, never carry a traceback or a credential.
"""


class EngineError(Exception):
    status = 500


class InvalidArgument(EngineError):
    """The request is malformed or names something impossible."""
    status = 400


class Forbidden(EngineError):
    status = 403


class NotFound(EngineError):
    status = 404


class NoSuchContainer(NotFound):
    def __init__(self, ref):
        super().__init__('No such container: %s' % ref)


class NoSuchImage(NotFound):
    def __init__(self, ref):
        super().__init__('No such image: %s' % ref)


class NoSuchExec(NotFound):
    def __init__(self, ref):
        super().__init__('No such exec instance: %s' % ref)


class Conflict(EngineError):
    """The object is in a state that forbids the operation."""
    status = 409


class NotModified(EngineError):
    """Docker answers 304 when a start/stop/pause has nothing to do."""
    status = 304


class LayerError(InvalidArgument):
    """A layer or rootfs tarball is malformed or hostile."""


class ContentError(EngineError):
    """A blob does not match its digest, or the store is damaged."""


class InsufficientStorage(EngineError):
    """Not enough space on the engine's disk (WebDAV's 507, as registries
    answer): the operation would leave less free than the configured
    reserve, or the filesystem is full."""
    status = 507


class RuntimeFailure(EngineError):
    """The OCI runtime or the monitor failed; the message carries its words."""


class Unauthorized(EngineError):
    """A registry refused the credentials (or asked for some)."""
    status = 401


class RegistryError(EngineError):
    """A registry failed, refused or lied (wrong digest, wrong size,
    garbage); the message names the registry, the repository and what
    failed, never a credential."""
    status = 502
