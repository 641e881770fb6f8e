"""Semantic guidance: the VLM Annotator (paper Sec. 1.4, Table 1) and the text encoders.

* ``prompt``       Table 1's prompt (verbatim), PROMPT_VERSION, the OpenAI chat message with labelled frames.
* ``parser``       ``parse_reply``: the paper's reply format and a JSON form -> sentences + contacts (never raises).
* ``client``       ``OpenAICompatibleClient``: POST /chat/completions, retries, timeouts, reply cache.
* ``offline``      ``OfflineAnnotator`` (contacts + sentences from the 3D estimate), ``contact_agreement``.
* ``annotations``  ``Contact``, ``ClipAnnotation``, ``Annotations`` and the ``annotations.json`` file.
* ``annotator``    ``annotate_clips``: per 16-frame clip, source ``openai`` | ``offline`` | ``file:PATH``.
* ``text_encoder`` ``MiniLMTextEncoder`` (default, 384-d), ``ClipTextEncoder``, ``CachedTextEncoder``.

Submodules are imported on demand (the package import stays light).
"""
