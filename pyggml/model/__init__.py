"""GGUF parsing, hparams, model and weight loading (llama.cpp: gguf.cpp, llama-model-loader, llama-model)."""
