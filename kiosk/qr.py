"""The ticket's QR code drawn with Qt from the ``qrcode`` matrix (no PIL round trip)."""

from __future__ import annotations

import qrcode
from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QColor, QPainter, QPixmap


def qr_pixmap(payload: str, size_px: int) -> QPixmap:
    """A square QR code of about ``size_px``, black on white, with its quiet zone."""
    code = qrcode.QRCode(border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(payload)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    n = len(matrix)
    module = max(1, size_px // n)  # whole pixels per module keep it sharp for cameras
    side = module * n
    pix = QPixmap(side, side)
    pix.fill(QColor("#ffffff"))
    painter = QPainter(pix)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#000000"))
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                painter.drawRect(QRect(x * module, y * module, module, module))
    painter.end()
    return pix
