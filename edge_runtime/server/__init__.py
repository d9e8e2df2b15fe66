"""``itemrec-edge serve``: the live loop, an HTTP API and a browser page in one process.

``recognizer`` owns the interpreter and the gallery (one thread does all their work),
``camera`` runs the live loop of ``itemrec.edge_runtime.live`` over them, ``event_hub`` fans
the scan event stream out to HTTP clients, ``app`` is the FastAPI application and its page,
``security`` the bearer token and the upload cap, ``serve`` wires them and runs uvicorn.
Needs the ``edge-serve`` extra (FastAPI, uvicorn, python-multipart); nothing else in
``itemrec.edge_runtime`` imports this package.
"""
