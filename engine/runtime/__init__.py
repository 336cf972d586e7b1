"""The runtime layer: OCI runtime drivers, spec generation, conmon monitoring.

``oci``      runc/crun drivers, ``load_runtime``, ``choose_runtime``
``spec``     OCI spec and exec process generation, ``resolve_user``
``seccomp``  Docker-format seccomp profile -> OCI linux.seccomp
``monitor``  ``TaskService``: create/start/attach/resize/exec/exit status
"""
