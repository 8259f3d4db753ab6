"""Imaging archive core: storage, parsing, DICOMweb encodings, rendering and de-identification."""
