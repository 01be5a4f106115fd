#!/usr/bin/env python3
"""The code blocks of README.md and docs/*.md, checked so the pages stay true (run by CTest).

Each fenced block says what it is, and each kind is checked:
  ```cpp     a complete program: compiled with the build (tests/docs/CMakeLists.txt) and run
  ```cpp experiments/examples/NAME.cpp
             the same, and the block must equal that file (a page that shows an example whole)
  ```sh      commands: every sh block of a page runs in order in one bash -euo pipefail, in a
             fresh temporary folder, with the build's bin/ (latte, the bench programs) on PATH
             and $LATTE_SOURCE the source tree, $LATTE_BUILD the build folder
  ```sh ci   commands CI runs itself: each line must be a line of .ci/run
  ```cmake   a consumer's CMakeLists.txt: scripts/check-install.sh builds docs/install.md's
  ```text    output shown to the reader: not code
  an indented block (4 spaces) is an excerpt: each of its lines must appear in a cpp block of
             the same page, so it cannot drift from the program that is run
Commands:
  doc_blocks.py check                  fences are all labelled, `sh ci` lines are in .ci/run,
                                       relative links point at files that exist
  doc_blocks.py extract-cpp OUT        writes each cpp block as OUT/<page>_<line>.cpp (a file is
                                       rewritten only when its text changed) and lists them
  doc_blocks.py run-sh PAGE BIN_DIR    runs PAGE's sh blocks
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = {"cpp", "sh", "sh ci", "cmake", "text"}


def kind_of(info):
    """The block's kind, and the file it must equal for `cpp <path>`."""
    if info and info.startswith("cpp "):
        return "cpp", info[4:].strip()
    return info, None


def pages():
    docs = os.path.join(ROOT, "docs")
    found = [os.path.join(ROOT, "README.md")]
    for folder, _, files in os.walk(docs):
        found += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".md")]
    return found


def blocks(page):
    """(kind, first line number, text) for each fenced block; kind None when unlabelled."""
    out, kind, start, lines = [], None, 0, None
    with open(page, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            stripped = line.strip()
            if lines is None and stripped.startswith("~~~"):
                out.append(("~~~ fence", number, ""))  # a fence the checks would not see: refused
                continue
            if lines is None and stripped.startswith("```"):
                kind, start, lines = stripped[3:].strip() or None, number, []
            elif lines is not None and stripped == "```":
                out.append((kind, start, "".join(lines)))
                lines = None
            elif lines is not None:
                lines.append(line)
    if lines is not None:
        out.append(("unclosed", start, ""))
    return out


def excerpts(page):
    """(first line number, lines) of each indented code block outside lists."""
    out, paragraph, start, previous_kind = [], [], 0, None
    with open(page, encoding="utf-8") as f:
        lines = f.read().split("\n")
    in_fence = False
    for number, line in enumerate(lines + [""], 1):
        if line.strip().startswith("```"):
            in_fence = not in_fence
        if in_fence:
            continue
        if line.strip():
            if not paragraph:
                start = number
            paragraph.append(line)
            continue
        if paragraph:
            indented = all(p.startswith("    ") for p in paragraph)
            if indented and previous_kind != "list":
                out.append((start, [p.strip() for p in paragraph]))
            first = paragraph[0].lstrip()
            if not indented:
                previous_kind = "list" if re.match(r"([-*+]|\d+\.)\s", first) else "text"
            paragraph = []
    return out


def relative(page):
    return os.path.relpath(page, ROOT)


def check():
    problems = []
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = {line.strip() for line in f if not line.lstrip().startswith("#")}
    for page in pages():
        for info, line, text in blocks(page):
            where = f"{relative(page)}:{line}"
            kind, copy_of = kind_of(info)
            if copy_of:
                path = os.path.join(ROOT, copy_of)
                if not os.path.isfile(path):
                    problems.append(f"{where}: {copy_of} does not exist")
                elif open(path, encoding="utf-8").read() != text:
                    problems.append(f"{where}: the block differs from {copy_of}; paste the file again")
            if kind not in KINDS:
                problems.append(f"{where}: a ``` block of kind {kind!r}; label it one of {sorted(KINDS)}")
            if kind == "sh ci":
                for command in text.splitlines():
                    if command.strip() and command.strip() not in ci:
                        problems.append(f"{where}: `{command.strip()}` is not a line of .ci/run")
            if kind == "cpp" and "int main" not in text:
                problems.append(f"{where}: a cpp block must be a complete program (with int main)")
        programs = "".join(text for info, _, text in blocks(page) if kind_of(info)[0] == "cpp")
        for line, excerpt in excerpts(page):
            for code in excerpt:
                if code.rstrip(".").rstrip() not in programs:
                    problems.append(f"{relative(page)}:{line}: the excerpt line `{code}` is in no cpp block of the page")
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            if not os.path.exists(os.path.join(os.path.dirname(page), target)):
                problems.append(f"{relative(page)}: the link to {target} points at nothing")
    for p in problems:
        print(p)
    print(f"doc_blocks: {len(pages())} pages, {len(problems)} problems")
    return 1 if problems else 0


def example_name(page, line):
    stem = re.sub(r"[^A-Za-z0-9]+", "_", os.path.splitext(relative(page))[0]).strip("_").lower()
    return f"{stem}_{line}"


def extract_cpp(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    written = set()
    for page in pages():
        for info, line, text in blocks(page):
            if kind_of(info)[0] != "cpp":
                continue
            path = os.path.join(out_dir, example_name(page, line) + ".cpp")
            source = f'#line {line + 1} "{page}"\n' + text  # errors point into the page
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if old != source:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(source)
            written.add(path)
            print(path)
    for stale in os.listdir(out_dir):  # blocks since removed from the pages
        path = os.path.join(out_dir, stale)
        if path.endswith(".cpp") and path not in written:
            os.remove(path)
    return 0


def run_sh(page, bin_dir):
    script = "".join(f"# {relative(page)}:{line}\n{text}" for kind, line, text in blocks(page) if kind == "sh")
    if not script:
        print(f"doc_blocks: {relative(page)} has no sh blocks")
        return 0
    env = dict(os.environ, PATH=os.path.abspath(bin_dir) + os.pathsep + os.environ.get("PATH", ""),
               LATTE_SOURCE=ROOT, LATTE_BUILD=os.path.dirname(os.path.abspath(bin_dir)))
    with tempfile.TemporaryDirectory(prefix="latte-docs-") as work:
        os.makedirs(os.path.join(work, "tmp"))
        env["TMPDIR"] = os.path.join(work, "tmp")  # mktemp -d in a page stays inside, and is removed with it
        result = subprocess.run(["bash", "-euo", "pipefail", "-x", "-c", script], cwd=work, env=env)
    if result.returncode:
        print(f"doc_blocks: {relative(page)}: its sh blocks failed (exit {result.returncode})")
    return result.returncode


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["check"]:
        sys.exit(check())
    if len(args) == 2 and args[0] == "extract-cpp":
        sys.exit(extract_cpp(args[1]))
    if len(args) == 3 and args[0] == "run-sh":
        sys.exit(run_sh(args[1], args[2]))
    sys.exit(__doc__)
