"""The way personal-WeChat bots watch a phone today, as the phone loop's baseline.

A loop over `adb shell uiautomator dump` with the screen parsed by ElementTree, the way
the Python scripts this project replaces do it (one `adb` process per command, as
`subprocess` runs them): dump the conversation list on every poll; open the first row
with an unread badge; dump the chat and take the newest message from the other side;
tap the input, type it through ADBKeyBoard's broadcast, dump again to find the send
button (WeChat shows it only while the input holds text), tap it, press back (again on
the next poll while the list is not shown: the first back may only close the keyboard).
It answers each message with its own text, as the benchmark's echo handler does.

Ids come from a Tapwire UI map (the same data the Rust reader uses), so both read the
same screens. No dedup across restarts, no check of what was typed or sent, no badge
count: what such scripts do not do either.

    python3 poller.py --adb-port P --serial S --map ui-maps/wechat-8.0.toml [--poll 0.2]

Runs until killed; prints one line per reply (`replied <chat> <text>`) on stdout.
"""

import argparse
import base64
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")


class Phone:
    def __init__(self, port, serial):
        self.base = ["adb", "-P", str(port), "-s", serial]

    def shell(self, command):
        done = subprocess.run(
            self.base + ["shell", command], capture_output=True, check=False
        )
        return done.stdout.decode("utf-8", "replace")

    def dump(self):
        out = self.shell("uiautomator dump /dev/tty")
        end = out.rfind(">")
        if not out.startswith("<?xml") or end < 0:
            return None
        try:
            return ET.fromstring(out[: end + 1])
        except ET.ParseError:
            return None

    def tap(self, node):
        x1, y1, x2, y2 = bounds(node)
        self.shell(f"input tap {(x1 + x2) // 2} {(y1 + y2) // 2}")


def bounds(node):
    found = BOUNDS.match(node.get("bounds", ""))
    return tuple(int(v) for v in found.groups()) if found else (0, 0, 0, 0)


def has_id(node, short):
    return node.get("resource-id", "").endswith(":id/" + short)


def find_all(root, short):
    return [n for n in root.iter("node") if has_id(n, short)]


def first(root, short):
    found = find_all(root, short)
    return found[0] if found else None


def role_id(roles, name):
    return roles[name]["id"]


def newest_from_them(chat, roles, width):
    """The text of the last message row, when it is the other side's (avatar on the left)."""
    rows = find_all(chat, role_id(roles, "message_row"))
    if not rows:
        return None
    last = rows[-1]
    avatar = first(last, role_id(roles, "message_avatar"))
    text = first(last, role_id(roles, "message_text"))
    if avatar is None or text is None or bounds(avatar)[0] > width // 2:
        return None
    return text.get("text") or None


def answer_one(phone, roles):
    listing = phone.dump()
    if listing is None:
        return False
    width = bounds(next(listing.iter("node")))[2] or 1080
    if first(listing, role_id(roles, "conversation_list")) is None:
        # Still in a chat (the first back only closed the keyboard): back to the list.
        phone.shell("input keyevent 4")
        return True
    badges = (role_id(roles, "row_unread_badge"), role_id(roles, "row_unread_dot"))
    rows = find_all(listing, role_id(roles, "conversation_row"))
    unread = [r for r in rows if any(first(r, b) is not None for b in badges)]
    if not unread:
        return False
    row = unread[0]
    title = first(row, role_id(roles, "row_title"))
    phone.tap(row)
    chat = phone.dump()
    text = newest_from_them(chat, roles, width) if chat is not None else None
    if text is not None:
        kind = roles["input"].get("class")
        fields = find_all(chat, role_id(roles, "input"))
        field = next((n for n in fields if kind is None or n.get("class") == kind), None)
        if field is not None:
            phone.tap(field)
            encoded = base64.b64encode(text.encode()).decode()
            phone.shell(
                f"am broadcast -a ADB_INPUT_B64 -p com.android.adbkeyboard --es msg {encoded}"
            )
            typed = phone.dump()
            send = first(typed, role_id(roles, "send_button")) if typed is not None else None
            if send is not None:
                phone.tap(send)
                name = title.get("text") if title is not None else "?"
                print(f"replied {name} {text}", flush=True)
    phone.shell("input keyevent 4")
    return True


def load_roles(path):
    """The map's roles; Python before 3.11 has no tomllib, and each role this script
    needs is one `name = { id = "…", … }` line of the map's [roles] table."""
    try:
        import tomllib

        with open(path, "rb") as handle:
            return tomllib.load(handle)["roles"]
    except ImportError:
        line = re.compile(r'^(\w+)\s*=\s*\{\s*id\s*=\s*"([^"]+)"')
        roles = {}
        with open(path, encoding="utf-8") as handle:
            for text in handle:
                found = line.match(text)
                if found:
                    roles[found.group(1)] = {"id": found.group(2)}
        return roles


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adb-port", type=int, required=True)
    parser.add_argument("--serial", required=True)
    parser.add_argument("--map", required=True)
    parser.add_argument("--poll", type=float, default=0.2)
    args = parser.parse_args()
    roles = load_roles(args.map)
    phone = Phone(args.adb_port, args.serial)
    while True:
        if not answer_one(phone, roles):
            time.sleep(args.poll)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
