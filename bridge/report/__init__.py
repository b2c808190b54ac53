"""report.html: one self-contained page per stack that says how it came out, without opening the PSD.

pictures.py makes its pictures while the stack runs (engine.preview), plots.py its plots (matplotlib), and
page.py lays them out (a Jinja2 template, page.html.j2) with the JSON report's figures and the stack's
warnings.
"""
