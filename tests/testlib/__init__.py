"""Real-parts test helpers for regfs.

Shared by tests/integration and tests/bench. Standard library only.

- registry:   start/stop a throw-away CNCF ``docker-registry`` on a loopback port
- images:     deterministic random test images in skopeo ``dir:`` layout, pushing them
- faultproxy: an in-process HTTP/1.1 reverse proxy that injects faults and logs requests
- tools:      running regfs and skopeo, reading dir:/oci: layouts, digests
"""
