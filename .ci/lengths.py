#!/usr/bin/env python3
"""Issue 15's layout rule, checked: no non-test source file over 600 lines,
no function over 80 lines unless a comment just above it starts with
`Long:` and says why. Test code (from a top-level `#[cfg(test)]` on) does
not count. Prints each offender; exits 1 if there is one."""
import pathlib
import re
import sys

FILE_LINES, FN_LINES = 600, 80
root = pathlib.Path(__file__).resolve().parent.parent
bad = []
for path in sorted(root.glob("crates/*/src/**/*.rs")):
    lines = path.read_text().split("\n")
    end = next((i for i, l in enumerate(lines) if l.startswith("#[cfg(test)]")), len(lines))
    code = lines[:end]
    rel = path.relative_to(root)
    if len(code) > FILE_LINES:
        bad.append(f"{rel}: {len(code)} lines of non-test code (at most {FILE_LINES})")
    for i, line in enumerate(code):
        m = re.match(r"^(\s*)(pub(\([a-z]+\))? )?(async )?fn (\w+)", line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent, j = m.group(1), i
        while j < len(code) and code[j].rstrip() != indent + "}":
            j += 1
        above = "\n".join(code[max(0, i - 6):i])
        if j - i + 1 > FN_LINES and "// Long:" not in above:
            bad.append(f"{rel}:{i + 1}: fn {m.group(5)} has {j - i + 1} lines "
                       f"(at most {FN_LINES}, or a `// Long:` comment saying why)")
print("\n".join(bad) if bad else "lengths: every file and function within the limits")
sys.exit(1 if bad else 0)
