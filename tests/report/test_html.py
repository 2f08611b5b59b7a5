"""The HTML report: every value a user can set (titles, copy from a merchandising sheet) is text, never markup."""

from __future__ import annotations

from pathlib import Path

from adcreative.report.html import Report, Tile

HOSTILE = '<script>alert(1)</script>"\'><img src=x onerror=alert(2)>'


def test_every_field_is_escaped(tmp_path: Path) -> None:
    # the template is report.html.j2, which select_autoescape() does not count as HTML: nothing was escaped
    r = Report(tmp_path / "out", f"title {HOSTILE}")
    s = r.section(f"section {HOSTILE}", intro=f"intro {HOSTILE}")
    s.tables.append((f"caption {HOSTILE}", [f"header {HOSTILE}"], [[f"cell {HOSTILE}", 0.5]]))
    s.galleries.append((f"gallery {HOSTILE}", [Tile("a.jpg", f"b.png{HOSTILE}", f"tile {HOSTILE}", f"badge {HOSTILE}",
                                                    "ok", {"title": HOSTILE})]))
    s.images.append((f"figure {HOSTILE}", "c.png"))
    page = r.write().read_text()
    assert "<script>alert" not in page and "<img src=x" not in page and "onerror=alert(2)>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 10  # shown as text, escaped once (not &amp;lt;)
    assert "&amp;lt;" not in page
    assert page.count("<script>") == 1  # the page's own (the dialog), nothing else
