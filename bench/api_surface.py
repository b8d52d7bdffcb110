#!/usr/bin/env python3
"""Counts sockact's public API surface: types, function names and overloads.

    bench/api_surface.py [--root DIR] [--markdown] [--names]

Each public header include/sockact/*.hpp is parsed on its own by clang
(`clang++ -Xclang -ast-dump=json`, filtered to `sockact`), in the default
configuration a user gets: header-only, exceptions on, no libsystemd. Counted,
at the scope of namespace `sockact` (any `detail` namespace left out, and
anything whose first declaration is in impl/ or detail/; inline namespaces
such as the Asio flavour are transparent):

  types      classes, structs, unions, enums, aliases and class templates at
             namespace scope (nested types are shown apart, not counted);
  names      distinct free function names (templates included);
  overloads  distinct free function signatures (a name declared then defined
             again counts once; a function template counts once).

Member functions are not counted: the class carrying them is. Each
declaration is credited to the header that declares it first. Needs clang++
and the adapters' dependencies (Asio or Boost.Asio, libuv, libevent,
libmicrohttpd, cpp-httplib); a header that does not parse is reported and
left out, and the exit status is 1.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

TYPE_KINDS = {
    "CXXRecordDecl",
    "EnumDecl",
    "TypeAliasDecl",
    "TypedefDecl",
    "ClassTemplateDecl",
    "TypeAliasTemplateDecl",
}
FUNCTION_KINDS = {"FunctionDecl", "FunctionTemplateDecl"}


class Walker:
    """Reads clang's JSON AST, where a location names its file only when it
    differs from the one before (in document order); tracks that file."""

    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.file = None
        self.types = {}  # qualified name -> (header, kind)
        self.nested = {}  # qualified name -> header
        self.functions = {}  # (qualified name, signature) -> header

    def track(self, node):
        """Advances self.file over every location inside `node`, in order."""
        if isinstance(node, dict):
            if "file" in node and ("offset" in node or "line" in node or "col" in node):
                self.file = node["file"]
            for key, value in node.items():
                if key in ("inner", "includedFrom"):
                    continue
                self.track(value)
        elif isinstance(node, list):
            for value in node:
                self.track(value)

    def header(self):
        """The public header the current file is, or None."""
        if self.file is None:
            return None
        path = os.path.realpath(self.file)
        base = os.path.join(self.root, "include", "sockact") + os.sep
        if not path.startswith(base):
            return None
        rel = path[len(base) :]
        if os.sep in rel or not rel.endswith(".hpp"):
            return None  # impl/, detail/
        return rel

    def walk(self, node, scope, depth_in_class=0):
        """scope: the enclosing names; None once inside something private."""
        self.track({k: v for k, v in node.items() if k != "inner"})
        kind = node.get("kind")
        name = node.get("name", "")
        inner = node.get("inner", [])

        if kind == "NamespaceDecl":
            # detail, asio_detail, ... and anonymous namespaces are private;
            # an inline namespace (the Asio flavour) is transparent.
            private = scope is None or name == "" or name == "detail" or name.endswith("_detail")
            child_scope = None if private else scope if node.get("isInline") else scope + [name]
            for child in inner:
                self.walk(child, child_scope)
            return
        if kind == "LinkageSpecDecl":
            for child in inner:
                self.walk(child, scope)
            return
        if scope is None or node.get("isImplicit"):
            self.skip(inner)
            return

        header = self.header()
        qualified = "::".join(scope + [name])
        if kind in TYPE_KINDS and name:
            if depth_in_class == 0:
                if header is not None and qualified not in self.types:
                    self.types[qualified] = (header, kind)
            elif header is not None and qualified not in self.nested:
                self.nested[qualified] = header
            if kind in ("CXXRecordDecl", "ClassTemplateDecl"):
                # Nested types; members are not counted. A class template's
                # record is its child: do not count it twice.
                for child in inner:
                    if child.get("kind") == "CXXRecordDecl" and child.get("name") == name and kind == "ClassTemplateDecl":
                        self.walk_members(child.get("inner", []), scope + [name], header)
                    elif child.get("kind") in TYPE_KINDS and not child.get("isImplicit"):
                        self.walk(child, scope + [name], depth_in_class + 1)
                    else:
                        self.skip([child])
                return
            self.skip(inner)
            return
        if kind in FUNCTION_KINDS and depth_in_class == 0:
            signature = node.get("type", {}).get("qualType")
            if kind == "FunctionTemplateDecl":
                fn = next((c for c in inner if c.get("kind") == "FunctionDecl"), {})
                self.skip(inner)
                signature = "template " + fn.get("type", {}).get("qualType", "")
            else:
                self.skip(inner)
            if header is not None and not name.startswith("operator\"\""):
                self.functions.setdefault((qualified, signature), header)
            return
        self.skip(inner)

    def walk_members(self, inner, scope, header):
        for child in inner:
            if child.get("kind") in TYPE_KINDS and not child.get("isImplicit"):
                self.walk(child, scope, 1)
            else:
                self.skip([child])

    def skip(self, nodes):
        self.track(nodes)


def parse_header(root, header, compiler, extra):
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as tu:
        tu.write("#include <sockact/%s>\n" % header)
        name = tu.name
    try:
        cmd = [compiler, "-std=c++17", "-fsyntax-only", "-I", os.path.join(root, "include")]
        cmd += extra
        cmd += ["-Xclang", "-ast-dump=json", "-Xclang", "-ast-dump-filter", "-Xclang", "sockact", name]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        os.unlink(name)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[:3]
    text = proc.stdout
    decoder = json.JSONDecoder()
    objects, at = [], 0
    while True:
        while at < len(text) and text[at] != "{":
            at += 1
        if at >= len(text):
            break
        obj, at = decoder.raw_decode(text, at)
        objects.append(obj)
    return objects, None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(here), help="the source tree (default: this one)")
    ap.add_argument("--compiler", default="clang++")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--names", action="store_true", help="also list every type and overload")
    args = ap.parse_args()

    folder = os.path.join(args.root, "include", "sockact")
    headers = sorted(f for f in os.listdir(folder) if f.endswith(".hpp"))
    walker = Walker(args.root)
    failed = []
    for header in headers:
        extra = ["-DSOCKACT_ASIO_STANDALONE"]  # one flavour: the same names either way
        objects, error = parse_header(args.root, header, args.compiler, extra)
        if objects is None:
            failed.append((header, error))
            continue
        for obj in objects:
            walker.file = None
            if obj.get("kind") == "NamespaceDecl" and obj.get("name") == "sockact":
                walker.walk(obj, [])

    per = defaultdict(lambda: [0, set(), 0])
    for _, (header, _) in walker.types.items():
        per[header][0] += 1
    for (qualified, _), header in walker.functions.items():
        per[header][1].add(qualified)
        per[header][2] += 1
    names = {q for (q, _) in walker.functions}
    total = (len(walker.types), len(names), len(walker.functions))

    if args.markdown:
        print("| header | types | function names | overloads |")
        print("| --- | ---: | ---: | ---: |")
        for header in headers:
            t, n, o = per[header] if header in per else (0, set(), 0)
            if t or n or o:
                print("| %s | %d | %d | %d |" % (header, t, len(n), o))
        print("| **total** | **%d** | **%d** | **%d** |" % total)
    else:
        print("types %d  function names %d  overloads %d" % total)
        print("%-22s %6s %6s %10s" % ("header", "types", "names", "overloads"))
        for header in headers:
            t, n, o = per[header] if header in per else (0, set(), 0)
            if t or n or o:
                print("%-22s %6d %6d %10d" % (header, t, len(n), o))
        print("nested types (not counted): %d" % len(walker.nested))
    if args.names:
        print()
        for q, (header, kind) in sorted(walker.types.items()):
            print("type      %-40s %s (%s)" % (q, header, kind))
        for (q, sig), header in sorted(walker.functions.items()):
            print("function  %-40s %s  %s" % (q, header, sig))
    for header, error in failed:
        print("not parsed: %s: %s" % (header, " / ".join(error)), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
