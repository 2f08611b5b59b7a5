"""Catalogue: products (an RGBA cutout + title, category, copy, price) imported from folders of cutouts and
metadata (``importer``), the built-in sample catalogue (``sample``), and procedural SKUs for RFNet's training
data (``procedural``). The stage every other stage builds on, after ``core``.

Nothing is imported here, so ``import adcreative.catalogue.importer`` stays light.
"""
