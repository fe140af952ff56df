"""Look and size of the kiosk: one style sheet, two modes (standard and elderly).

Sizes are in pixels for a 1080-pixel-wide portrait screen; touch targets are
never smaller than ``min_touch_mm`` at the screen's real DPI (a 32-inch
1080×1920 panel is about 69 dpi, a 21.5-inch one about 102 dpi).
"""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtGui import QFont

FONT_FAMILIES = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC",
                 "Microsoft YaHei", "PingFang SC", "sans-serif"]


@dataclass(frozen=True)
class Theme:
    elderly: bool = False
    dpi: float = 96.0
    min_touch_mm: float = 15.0
    compact: bool = False  # a landscape 1080-pixel-high screen: less height to spend

    # palette: deep government blue on white; elderly mode darkens and thickens
    @property
    def blue(self) -> str:
        return "#002b6b" if self.elderly else "#0b3d91"

    @property
    def blue_dark(self) -> str:
        return "#001a42" if self.elderly else "#072a66"

    @property
    def bg(self) -> str:
        return "#ffffff" if self.elderly else "#eef2f8"

    @property
    def text(self) -> str:
        return "#000000" if self.elderly else "#1a2433"

    @property
    def muted(self) -> str:
        return "#1a1a1a" if self.elderly else "#4a5568"

    accent = "#c8102e"  # the red of the ticket number and of warnings
    gold = "#ffd100"

    @property
    def scale(self) -> float:
        return (1.4 if self.elderly else 1.0) * (0.8 if self.compact else 1.0)

    def px(self, size: float) -> int:
        """Font size in pixels, scaled for elderly mode."""
        return round(size * self.scale)

    @property
    def touch_px(self) -> int:
        return round(self.min_touch_mm / 25.4 * self.dpi)

    def target(self, design_px: int) -> int:
        """Height of a touch target: the design size, never under ``min_touch_mm``."""
        factor = (1.15 if self.elderly else 1.0) * (0.68 if self.compact else 1.0)
        return max(round(design_px * factor), self.touch_px)

    @property
    def page_size(self) -> int:
        """Tiles on one screen: fewer choices per screen in elderly mode."""
        return 4 if self.elderly else 8

    @property
    def border(self) -> int:
        return 4 if self.elderly else 0

    def font(self, size: float, bold: bool = False) -> QFont:
        f = QFont()
        f.setFamilies(FONT_FAMILIES)
        f.setPixelSize(self.px(size))
        f.setBold(bold)
        return f

    # the rating scale, green to red, each with its pressed shade
    LEVEL_COLOURS = (("very_satisfied", "#136b2c", "#0c4a1e"), ("satisfied", "#3a8a3a", "#2b682b"),
                     ("basic", "#f0c030", "#d4a516"), ("unsatisfied", "#c85a12", "#9e460c"),
                     ("very_unsatisfied", "#b0102a", "#860b1f"))

    def _level_tiles(self) -> str:
        b = max(self.border, 0)
        edge = f"border: {b}px solid #000000;" if b else "border: none;"
        return "\n".join(
            f'QPushButton#Tile[variant="lvl_{lv}"] {{ background: {bg}; {edge} }}\n'
            f'QPushButton#Tile[variant="lvl_{lv}"]:pressed {{ background: {dark}; }}'
            for lv, bg, dark in self.LEVEL_COLOURS)

    def stylesheet(self) -> str:
        b = self.border
        tile_border = f"border: {b}px solid #000000;" if b else "border: none;"
        return f"""
QWidget#Root, QStackedWidget, QWidget#Screen {{ background: {self.bg}; color: {self.text}; }}
QLabel {{ color: {self.text}; background: transparent; }}
QWidget#Header {{ background: {self.blue}; }}
QWidget#Header QLabel {{ color: #ffffff; }}
QWidget#Footer {{ background: {self.bg}; border-top: 2px solid #c5cfdf; }}
QLabel#Title {{ color: {self.blue if not self.elderly else '#000000'}; font-weight: bold; }}
QLabel#Muted {{ color: {self.muted}; }}
QLabel#Warn {{ color: #ffffff; background: {self.accent}; border-radius: 10px;
               padding: 18px; font-weight: bold; }}
QLabel#Notice {{ color: #5c3b00; background: #fff4cc; border: 2px solid #e0b000;
                 border-radius: 10px; padding: 14px; }}
QLabel#Number {{ color: {self.accent}; font-weight: bold; }}
QPushButton#Tile {{ background: {self.blue}; color: #ffffff; {tile_border}
                    border-radius: 16px; text-align: left; }}
QPushButton#Tile:pressed {{ background: {self.blue_dark}; }}
QPushButton#Tile:disabled {{ background: #9aa7bb; color: #e9edf3; }}
QPushButton#Tile[variant="priority"] {{ background: #a3001b; }}
QPushButton#Tile[variant="priority"]:pressed {{ background: #7a0014; }}
QPushButton#Tile[variant="closed"] {{ background: #5f6b7d; }}
QPushButton#Tile[variant="light"] {{ background: #ffffff; color: {self.blue};
                    border: {max(b, 3)}px solid {self.blue}; }}
{self._level_tiles()}
QPushButton#Tile QLabel {{ color: #ffffff; }}
QPushButton#Tile[variant="light"] QLabel {{ color: {self.blue}; }}
QPushButton#Tile:disabled QLabel {{ color: #eef1f6; }}
QPushButton#Nav {{ background: #ffffff; color: {self.blue}; border: 3px solid {self.blue};
                   border-radius: 12px; padding: 6px 28px; font-weight: bold; }}
QPushButton#Nav:pressed {{ background: #dde6f5; }}
QPushButton#Nav:disabled {{ color: #9aa7bb; border-color: #c5cfdf; }}
QPushButton#Primary {{ background: {self.blue}; color: #ffffff; border: {b}px solid #000000;
                      border-radius: 12px; padding: 6px 28px; font-weight: bold; }}
QPushButton#Primary:pressed {{ background: {self.blue_dark}; }}
QPushButton#Primary:disabled {{ background: #9aa7bb; color: #eef1f6; }}
QPushButton#Toggle {{ background: {self.blue_dark if self.elderly else '#ffffff'};
                      color: {'#ffffff' if self.elderly else self.blue};
                      border: 3px solid {self.blue}; border-radius: 12px; padding: 6px 24px;
                      font-weight: bold; }}
QPushButton#Key {{ background: #ffffff; color: {self.text}; border: 2px solid #8796ad;
                   border-radius: 10px; font-weight: bold; }}
QPushButton#Key:pressed {{ background: #dde6f5; }}
QLineEdit {{ background: #ffffff; color: {self.text}; border: 3px solid {self.blue};
             border-radius: 10px; padding: 8px 16px; }}
QTextBrowser {{ background: #ffffff; color: {self.text}; border: 2px solid #c5cfdf;
                border-radius: 12px; padding: 16px; }}
QFrame#Card {{ background: #ffffff; border: {max(b, 2)}px solid
               {'#000000' if self.elderly else '#c5cfdf'}; border-radius: 16px; }}
QFrame#Card QLabel {{ background: transparent; }}
QScrollBar:vertical {{ width: 28px; }}
"""
