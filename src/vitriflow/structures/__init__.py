"""Starting cells: structure ids and seeds (``ids``), random packing (``packing``), the cells of
one system from its compositions and references (``build``), and the run-summary report
section (``report``)."""
