#!/usr/bin/env python3
"""Tapwire plugin: who is on duty.

Speaks the Tapwire plugin protocol (see ../README.md): one JSON request per line on
stdin, one JSON answer per line on stdout. Python 3.8+, standard library only.

roster.json, read again on every request so that edits apply at once:
  start                  the date rotation[0] is on duty (YYYY-MM-DD)
  rotation               names, one per day, repeating
  overrides              {"YYYY-MM-DD": "name"} for swaps and holidays
  timezone_offset_hours  the roster's time zone, for "today" and for schedules (8 = UTC+8)
"""

import datetime as dt
import json
import os
import re
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROSTER_FILE = os.path.join(HERE, "roster.json")
MAX_LIST_DAYS = 31

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


class UserError(Exception):
    """A problem to tell the user, answered as the request's error."""


def log(message):
    print("roster: " + message, file=sys.stderr, flush=True)


def send(obj):
    # Bytes on the binary stream: UTF-8 whatever the locale, flushed so the host sees it now.
    sys.stdout.buffer.write((json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8"))
    sys.stdout.buffer.flush()


class Roster:
    def __init__(self, data):
        try:
            self.start = parse_date(data["start"])
            self.rotation = list(data["rotation"])
            self.overrides = dict(data.get("overrides", {}))
            self.offset = dt.timedelta(hours=float(data.get("timezone_offset_hours", 0)))
        except (KeyError, TypeError, ValueError, UserError) as e:
            raise UserError("roster.json 有误: %s" % e)
        if not self.rotation:
            raise UserError("roster.json 有误: rotation 为空")

    @staticmethod
    def load():
        try:
            with open(ROSTER_FILE, encoding="utf-8") as f:
                return Roster(json.load(f))
        except (OSError, ValueError) as e:
            raise UserError("无法读取 roster.json: %s" % e)

    def on_duty(self, day):
        override = self.overrides.get(day.isoformat())
        if override:
            return override
        return self.rotation[(day - self.start).days % len(self.rotation)]

    def local_date(self, moment):
        """The roster's calendar date at an aware datetime."""
        return (moment.astimezone(dt.timezone.utc) + self.offset).date()

    def today(self):
        return self.local_date(dt.datetime.now(dt.timezone.utc))


def parse_date(text):
    try:
        return dt.datetime.strptime(str(text), "%Y-%m-%d").date()
    except ValueError:
        raise UserError("日期格式应为 YYYY-MM-DD: %s" % text)


def parse_rfc3339(text):
    """fromisoformat only learned 'Z' and arbitrary fractions in 3.11."""
    m = RFC3339.match(str(text))
    if not m:
        raise UserError("scheduled_for 不是 RFC 3339 时间: %s" % text)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8)
    if zone in ("Z", "z"):
        tz = dt.timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def reply(text):
    return [{"action": "reply", "text": text}]


def command_who(roster, args):
    day = parse_date(args[0]) if args else roster.today()
    return reply("%s 值班: %s" % (day.isoformat(), roster.on_duty(day)))


def command_list(roster, args):
    days = 7
    if args:
        try:
            days = int(args[0])
        except ValueError:
            raise UserError("天数应为数字: %s" % args[0])
        if not 1 <= days <= MAX_LIST_DAYS:
            raise UserError("天数应在 1 到 %d 之间" % MAX_LIST_DAYS)
    first = roster.today()
    lines = ["未来 %d 天值班:" % days]
    for i in range(days):
        day = first + dt.timedelta(days=i)
        lines.append("%s %s" % (day.isoformat(), roster.on_duty(day)))
    return reply("\n".join(lines))


COMMANDS = {"who": command_who, "list": command_list}


def schedule_fired(roster, event):
    raw = event.get("raw") or {}
    target, conversation = raw.get("target"), raw.get("conversation")
    if not target or not conversation:
        raise UserError("schedule.fired 缺少 target 或 conversation")
    when = raw.get("scheduled_for")
    day = roster.local_date(parse_rfc3339(when)) if when else roster.today()
    text = "今日值班: %s (%s)" % (roster.on_duty(day), day.isoformat())
    return [{"action": "send", "target": target, "conversation": conversation, "text": text}]


def handle(request):
    kind = request.get("kind")
    if kind == "command":
        command = request.get("command")
        handler = COMMANDS.get(command)
        if handler is None:
            raise UserError("未知命令 %s; 可用: roster who [YYYY-MM-DD], roster list [days]" % command)
        return handler(Roster.load(), [str(a) for a in request.get("args") or []])
    if kind == "event":
        event = request.get("event") or {}
        if event.get("type") == "schedule.fired":
            return schedule_fired(Roster.load(), event)
        return []
    raise UserError("unknown request kind %r" % kind)


def serve_line(line):
    try:
        request = json.loads(line.decode("utf-8"))
    except ValueError as e:
        log("ignoring a line that is not JSON: %s" % e)
        return
    if not isinstance(request, dict) or "id" not in request:
        log("ignoring a request without an id")
        return
    rid = request["id"]
    try:
        send({"id": rid, "actions": handle(request)})
    except UserError as e:
        send({"id": rid, "error": str(e)})
    except Exception:  # noqa: BLE001 - one bad request must not end the plugin
        log("request %s failed:\n%s" % (rid, traceback.format_exc()))
        send({"id": rid, "error": "roster 内部错误"})


def main():
    # readline, not iteration: answers must go out per line, not per buffer.
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return  # stdin closed: the host is stopping us
        if line.strip():
            serve_line(line)


if __name__ == "__main__":
    main()
