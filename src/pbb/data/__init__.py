"""The data layer: pointer templates, declarative documents, CoT traces, splits, composition, the build.

`pbb.data.build.build_data(exp, out_dir)` is the entry point (`pbb data CONFIG --out DIR`);
the other modules are its pure parts, each usable on its own.
"""
