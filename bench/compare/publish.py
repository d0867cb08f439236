#!/usr/bin/env python3
"""publish.py DIR DOC — put DIR/table.md into DOC between the bench-compare markers.

The section between '<!-- bench-compare:begin -->' and '<!-- bench-compare:end -->' is
replaced whole (a link to the raw results and the chart comes with it); if DOC has no
markers yet, the section is added right after DOC's first paragraph block under the title.
Standard library only.
"""
import os
import sys

BEGIN = "<!-- bench-compare:begin -->"
END = "<!-- bench-compare:end -->"


def main(d, doc):
    with open(os.path.join(d, "table.md")) as f:
        table = f.read().rstrip("\n")
    # Every heading one level down: the table's title becomes a section of the
    # document, its sections subsections (code blocks are left alone).
    lines = table.split("\n")
    fenced = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            lines[i] = "#" + line
    section = "\n".join([BEGIN,
                         "\n".join(lines),
                         "",
                         "![giftcard vs PostgreSQL: purchases/s and p99 by concurrent buyers](compare.png)",
                         "",
                         "Redo the table and chart from the raw results with "
                         "`bench/compare/run.sh --report %s`." % d.rstrip("/"),
                         END])
    with open(doc) as f:
        text = f.read()
    if BEGIN in text and END in text:
        a = text.index(BEGIN)
        b = text.index(END) + len(END)
        text = text[:a] + section + text[b:]
    else:
        # After the title and its introduction: before the first '## ' heading.
        i = text.find("\n## ")
        i = len(text) if i < 0 else i + 1
        text = text[:i] + section + "\n\n" + text[i:]
    with open(doc, "w") as f:
        f.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
