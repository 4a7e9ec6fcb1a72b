"""JUnit XML: one ``<testsuite>`` per model, one failing ``<testcase>`` per
finding (an ``<error>`` for an unreadable file) and one passing testcase for
a clean model, so CI test tabs show every model that was checked."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, TextIO

from reglint.engine.finding import Finding
from reglint.engine.report import FileReport, RunReport
from reglint.reporters.machine import UNREADABLE_CODE, display_path, unreadable_finding
from reglint.reporters.text import clean

# Characters XML 1.0 cannot carry even escaped (clean() already drops C0/C1).
_XML_INVALID = re.compile("[\ud800-\udfff\ufffe\uffff]")


def xml_text(text: object) -> str:
    return _XML_INVALID.sub("", clean(text))


def render_junit(report: RunReport, out: TextIO, settings: Any = None, **_: object) -> None:
    root = ET.Element("testsuites", name="reglint")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for file_report in report.files:
        suite = _suite(file_report, settings)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))  # _suite sets all three
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")


def _suite(file_report: FileReport, settings: Any) -> ET.Element:
    path = xml_text(display_path(file_report.path))
    suite = ET.Element("testsuite", name=path)
    failures = errors = 0
    if file_report.error:
        case = _case(path, unreadable_finding(file_report))
        ET.SubElement(case, "error", message=xml_text(file_report.error), type=UNREADABLE_CODE)
        suite.append(case)
        errors += 1
    for finding in file_report.findings:
        case = _case(path, finding)
        failure = ET.SubElement(case, "failure", message=xml_text(finding.message), type=finding.severity.value)
        failure.text = _details(path, finding)
        suite.append(case)
        failures += 1
    if not file_report.error and not file_report.findings:
        ET.SubElement(suite, "testcase", name="reglint", classname="reglint", file=path)
    suite.set("tests", str(max(1, failures + errors)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    return suite


def _case(path: str, finding: Finding) -> ET.Element:
    name = finding.code + (f" [{xml_text(finding.layer)}]" if finding.layer else "")
    return ET.Element("testcase", name=name, classname=f"reglint.{finding.code}", file=path)


def _details(path: str, finding: Finding) -> str:
    lines = [f"{path}: {finding.code} {finding.name} ({finding.severity.value})", xml_text(finding.message)]
    if finding.layer:
        lines.insert(1, f"layer: {xml_text(finding.layer)}")
    if finding.remedy:
        lines.append(f"fix: {xml_text(finding.remedy)}")
    if finding.fix is not None and finding.fix.changes:
        lines.append(xml_text(finding.fix.line()))
    return "\n".join(lines)
