"""The corpus test's second opinion: ruamel.yaml (not gantry's parser) loads every file before and
after its edit, and the nodes that differ must be exactly the changes gantry reported:
(document, path, old value, new value). Exit 1 naming the first file where they are not."""

import json
import sys

from ruamel.yaml import YAML


def show(path):
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += ("." if text else "") + str(step)
    return text


def differ(a, b, path, out):
    """Appends (path, old, new) for every scalar that differs; a changed shape is an error."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a.keys()) != list(b.keys()):
            raise ValueError(f"{show(path)}: keys {list(a)} became {list(b)}")
        for key in a:
            differ(a[key], b[key], path + [key], out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise ValueError(f"{show(path)}: {len(a)} items became {len(b)}")
        for index, (x, y) in enumerate(zip(a, b)):
            differ(x, y, path + [index], out)
    elif type(a) is not type(b) or a != b:
        out.append((show(path), a, b))


def main():
    pairs = json.load(open(sys.argv[1], encoding="utf-8"))
    yaml = YAML(typ="safe", pure=True)
    for pair in pairs:
        with open(pair["before"], encoding="utf-8") as f:
            before = list(yaml.load_all(f))
        with open(pair["after"], encoding="utf-8") as f:
            after = list(yaml.load_all(f))
        if len(before) != len(after):
            sys.exit(f"{pair['file']}: {len(before)} documents became {len(after)}")
        found = []
        for number, (a, b) in enumerate(zip(before, after)):
            out = []
            try:
                differ(a, b, [], out)
            except ValueError as error:
                sys.exit(f"{pair['file']}: document {number}: {error}")
            found += [[number, path, old, new] for path, old, new in out]
        if sorted(map(repr, found)) != sorted(map(repr, pair["changes"])):
            sys.exit(f"{pair['file']}: ruamel.yaml sees {found}, gantry reported {pair['changes']}")
    print(f"{len(pairs)} files: the nodes that differ are the changes reported")


main()
