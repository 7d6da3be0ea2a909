"""Serving several models from one process, and engines that run elsewhere.

router.py   ModelRouter: one engine per model behind the Engine protocol; models load on first
            use within a memory budget and unload least-recently-used after an idle time
tracked.py  the event stream that counts a model's requests in flight
"""
