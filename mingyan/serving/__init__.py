"""Serving several models from one process, and engines that run elsewhere.

router.py   ModelRouter: one engine per model behind the Engine protocol; models load on first
            use within a memory budget and unload least-recently-used after an idle time
tracked.py  the event stream that counts a model's requests in flight
ray_engine.py   RayEngine: one model's engine as N Ray actors (--ray), behind the Engine protocol
ray_replica.py  EngineReplica: the actor (mingyan's llama.cpp engine in a Ray worker process)
ray_routing.py  conversation affinity with a least-in-flight fallback
ray_stream.py   a request's events coming back from a replica
"""
