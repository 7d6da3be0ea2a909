"""Documents: type sniffing, text extraction with pages, chunking, hybrid retrieval (BM25 over
segmented text + embeddings, fused), and citations. The tables live in `store/documents.py`."""
