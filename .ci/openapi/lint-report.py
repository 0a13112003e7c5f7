#!/usr/bin/env python3
"""One report format for the three linters of .ci/openapi.sh.

    lint-report.py validator|redocly|spectral OUTPUT_FILE

Prints one line per problem (severity, rule, JSON pointer, message), then
`<tool>: N errors, M warnings`, and exits 1 when there is an error. Reads
openapi-spec-validator's text (it has no machine format), and Redocly's and
Spectral's JSON (Redocly's text formats give line numbers only).
"""

import json
import re
import sys


def validator(text):
    # "...: Validation Error: [n] <message>" then, for schema errors,
    # "On instance['paths']['/v1/x']['get']...:" a few lines further.
    problems, message = [], None
    for line in text.splitlines():
        found = re.search(r"Validation Error: (?:\[\d+\] )?(.*)", line)
        if found:
            if message is not None:
                problems.append(("error", "spec", "", message))
            message = found.group(1)
        elif line.startswith("On instance") and message is not None:
            keys = re.findall(r"\['([^']*)'\]", line)
            pointer = "#/" + "/".join(k.replace("~", "~0").replace("/", "~1") for k in keys)
            problems.append(("error", "spec", pointer, message))
            message = None
    if message is not None:
        problems.append(("error", "spec", "", message))
    if not problems and "OK" not in text:
        problems.append(("error", "crash", "", text.strip()[-2000:]))
    return problems


def first_json(text, opening):
    """The JSON value that starts at the first `opening`, whatever follows it."""
    return json.JSONDecoder().raw_decode(text[text.index(opening) :])[0]


def redocly(text):
    report = first_json(text, "{")
    return [
        (
            {"warn": "warning"}.get(p["severity"], p["severity"]),
            p["ruleId"],
            (p.get("location") or [{}])[0].get("pointer", ""),
            p["message"],
        )
        for p in report["problems"]
    ]


SPECTRAL_SEVERITY = {0: "error", 1: "warning", 2: "info", 3: "hint"}


def spectral(text):
    start = text.find("[")
    if start < 0:  # "No results with a severity of 'error' found!"
        return [] if "No results" in text else [("error", "crash", "", text.strip()[-2000:])]
    return [
        (
            SPECTRAL_SEVERITY[p["severity"]],
            p["code"],
            "#/" + "/".join(str(k).replace("~", "~0").replace("/", "~1") for k in p["path"]),
            p["message"],
        )
        for p in first_json(text, "[")
    ]


def main():
    tool, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as output:
        text = output.read()
    try:
        problems = {"validator": validator, "redocly": redocly, "spectral": spectral}[tool](text)
    except (ValueError, KeyError) as error:
        problems = [("error", "crash", "", f"{error!r}: {text.strip()[-2000:]}")]
    for severity, rule, pointer, message in problems:
        print(f"  {severity:<7} {rule:<30} {pointer}  {message}")
    errors = sum(1 for p in problems if p[0] == "error")
    warnings = sum(1 for p in problems if p[0] == "warning")
    name = {"validator": "openapi-spec-validator"}.get(tool, tool)
    print(f"{name}: {errors} errors, {warnings} warnings")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
