"""The reader's extraction written the plain way (xml.etree), for a side-by-side figure.

Same work as the Rust reader on the same real dumps: parse, find the message list (or the
conversation list) by resource id, walk it in document order and pull out dividers,
messages (sender, text, side) and system lines, or rows (title, preview, time, unread).
Prints the mean time per file in microseconds, one JSON line.
"""
import json
import sys
import time
import xml.etree.ElementTree as ET

P = "com.tencent.mm:id/"


def bounds(node):
    b = node.get("bounds", "[0,0][0,0]")
    l, t = b[1:b.index("]")].split(",")
    r, bt = b[b.index("][") + 2:-1].split(",")
    return int(l), int(t), int(r), int(bt)


def find(node, rid):
    for n in node.iter("node"):
        if n.get("resource-id") == P + rid:
            return n
    return None


def chat(root):
    lst = find(root, "bp0")
    if lst is None:
        return None
    cx = (bounds(lst)[0] + bounds(lst)[2]) / 2
    items = []

    def walk(n):
        rid = n.get("resource-id", "")
        if rid == P + "br1":
            items.append(("divider", n.get("text")))
        elif rid == P + "bkj":
            av = find(n, "bk1")
            tx = find(n, "bkl")
            se = find(n, "brc")
            side = "right" if av is not None and (bounds(av)[0] + bounds(av)[2]) / 2 > cx else "left"
            items.append(("text", side, se.get("text") if se is not None else None,
                          tx.get("text") if tx is not None else None))
            return
        elif rid == P + "bkl" and n.get("text"):
            items.append(("system", n.get("text")))
        for c in n:
            walk(c)

    for c in lst:
        walk(c)
    return items


def rows(root):
    lst = find(root, "j8g")
    if lst is None:
        return None
    out = []
    for row in lst.iter("node"):
        if row.get("resource-id") != P + "cj1":
            continue
        get = lambda rid: (find(row, rid).get("text") if find(row, rid) is not None else None)
        out.append((get("kbq"), get("ht5"), get("otg"), find(row, "a_h") is not None,
                    find(row, "h_5") is not None))
    return out


def extract(raw):
    root = ET.fromstring(raw)
    return chat(root) or rows(root)


def main():
    results = {}
    for path in sys.argv[1:]:
        raw = open(path, "rb").read()
        extract(raw)
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < 2.0:
            extract(raw)
            n += 1
        results[path.rsplit("/", 1)[-1]] = (time.perf_counter() - start) / n * 1e6
    print(json.dumps(results))


if __name__ == "__main__":
    main()
