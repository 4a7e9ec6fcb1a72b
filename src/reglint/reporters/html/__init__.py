"""The HTML report (``--format html``): one self-contained file with the
model summary, findings and their fixes, a per-layer table, a bar chart of
each layer's parameters and penalty share, each rule's response to the
lambdas, and what ``reglint profile`` measured.

One source: the page embeds the JSON report (``RunReport.to_dict()``, plus
``analysis.profile`` from a profile run) in an inert
``<script type="application/json" id="reglint-report">`` and draws every
number, text and chart from that dict, never from the engine's objects; no
rule's threshold or formula is known here (the curves and fixes come from
the rules through the JSON). No network: the stylesheet (``style.css``,
package data) is inlined, the charts are SVG, there is no script to run.

Modules by job: ``page`` (frame, sections per file, embedding),
``sections`` (model summary, cards, findings with fixes), ``layers`` (layer
table and bar chart), ``sweep_chart`` (the rules' curves), ``profile_section``
and ``twin_chart`` (profile), ``charts`` (the SVG toolkit), ``markup``
(escaping and number text).
"""

from reglint.reporters.html.markup import json_for_script
from reglint.reporters.html.page import SCRIPT_ID, html_document, render_html

__all__ = ["SCRIPT_ID", "html_document", "json_for_script", "render_html"]
