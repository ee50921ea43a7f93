"""`tracelet ui` and `tracelet report`: a local, read-only web view of the local store.

Imported only by those two commands (`tracelet.ui.cli`), never by `import tracelet`: the package's import cost
is unchanged. Pieces:

- `tracelet.ui.series`: the series cache beside each journal (incremental reads, downsampling to pixels).
- `tracelet.ui.model`: the runs list, a run, its artifacts and delivery state as JSON-ready dicts.
- `tracelet.ui.server`: the HTTP server (standard library) and its routes.
- `tracelet.ui.report`: the same pages as one self-contained HTML file.
- `static/`: the page's script and styles, and uPlot 1.6.32 (MIT, `static/uPlot.LICENSE`), bundled: nothing is
  fetched from the network at run time.
"""
