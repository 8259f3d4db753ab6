"""Imaging: the image archive — store, index, DICOMweb, DIMSE, render, de-identify, share."""

from concilium.imaging.process import ImagingProcess

__all__ = ["ImagingProcess"]
