"""Serving a trained tagger over HTTP: a FastAPI app with request batching and a web page.

Everything here sits on :class:`bioner.models.Tagger` (``tag_documents``); the server adds
batching, limits, security and metrics, never a second copy of tagging logic.
"""
