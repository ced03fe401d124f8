"""``unnparse serve``: parsers behind an HTTP API, concurrent requests parsed in shared batches.

:mod:`~unnparse.service.batcher` gathers the requests (no HTTP in it), :mod:`~unnparse.service.app` is the ASGI
application (FastAPI), :mod:`~unnparse.service.page` the page at ``/``, :mod:`~unnparse.service.server` runs it.
"""
