"""Read models of the ledger, applied exactly once: view rows and tracking position commit
together (``runner``), and every view can be rebuilt from position 0 and compared
(``rebuild``)."""
