"""What the service keeps on disk, and how: versioned stores, editing caches, the model cache.

``versioned`` (one name's numbered, immutable versions: write, resolve, read, list, delete) under
``vectors`` and ``variants`` (their codecs); ``statistics`` and ``sampled_texts`` (the editing
caches); ``model_cache`` (converted built-in models); ``durable``, ``integrity``, ``names`` and
``debris`` beneath them all. The store may import ``engine`` (the types it encodes) and ``schemas``
(the name grammar), nothing above (``tests/test_layers.py``).
"""
