"""The web portals (tenant at ``/``, operator at ``/admin``): a client of the ARM API, served by ``alto up``.

Every page reads and every action writes through the ARM REST API with the signed-in person's own token, sent
in-process through the same ASGI app the SDK reaches over HTTPS (docs/portal.md says why). This package imports
nothing of the pipeline, the store or any provider (an import-linter contract keeps it so).
"""
