"""The data layer: pointer templates, declarative documents, CoT traces, splits, composition, the build.

`pbb.data.build.build_data(exp, out_dir)` is the entry point (`pbb data CONFIG --out DIR`),
and `pbb.data.corpus_import.import_corpus` that of `pbb import-corpus`; the other modules
are their pure parts, each usable on its own.
"""
