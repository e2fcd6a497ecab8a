"""Tooling beside the plugin: ``import fastreid_dmf`` never loads this package.

* ``synthetic/``: the bundled synthetic benchmark and the look-alike trees in the real datasets' layouts;
* ``finegpr_convert``: converting other annotation formats to FineGPR's attribute and caption files;
* ``smoke``: few-iteration runs of the full-size paper configs on look-alike data;
* ``paper_tables``: the paper's tables with our results beside the published numbers;
* ``benchmarks/``: the Table 1 ablation / main-job runner and measurement scripts' logic;
* ``visualize/``: ranking lists (DMF Fig. 4), Grad-CAM / Eigen-CAM / attention rollout maps (Fig. 5);
* ``text_search``: person search by description; ``features``: features of images to a file;
  ``onnx_export``: the image branch to ONNX, checked with onnxruntime.

The ``tools/`` scripts are thin command-line wrappers around these modules.
"""
