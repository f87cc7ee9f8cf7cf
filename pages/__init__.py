"""Dashboard pages: one module each, with a ``run()`` that lays the page out."""
