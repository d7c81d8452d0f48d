//! `logcat`: the `events` buffer, where the notification service logs every WeChat
//! notification; dumped with `-d`/`-t`, otherwise followed until the host hangs up.

use tokio::sync::broadcast;

use super::{CmdOutput, Follow};
use crate::device::Device;

pub(super) fn run(device: &Device, args: &[&str]) -> (CmdOutput, Option<Follow>) {
    let mut dump_only = false;
    let mut clear = false;
    let mut buffers = Vec::new();
    let mut tail: Option<usize> = None;
    let mut since_ms: Option<i64> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-d" => dump_only = true,
            "-c" => clear = true,
            "-b" => {
                buffers.extend(args.get(i + 1).copied());
                i += 1;
            }
            "-t" | "-T" => {
                if let Some(v) = args.get(i + 1) {
                    if let Ok(n) = v.parse::<usize>() {
                        tail = Some(n);
                    } else {
                        since_ms = parse_logcat_time(device, v);
                    }
                }
                // `-t` prints and exits, `-T` then keeps following.
                if args[i] == "-t" {
                    dump_only = true;
                }
                i += 1;
            }
            "-v" | "-s" | "-e" | "--pid" | "-m" | "--regex" => i += 1,
            _ => {}
        }
        i += 1;
    }
    if clear {
        device.with(|st| st.event_log.clear());
        return (CmdOutput::default(), None);
    }
    let events = buffers.is_empty()
        || buffers
            .iter()
            .any(|b| b.split(',').any(|x| x == "events" || x == "all"));
    // Subscribe before reading the buffer so no line falls between the two.
    let rx = device.subscribe_events();
    let mut lines: Vec<String> = if events {
        device.read(|st| {
            st.event_log
                .iter()
                .filter(|(t, _)| since_ms.is_none_or(|s| *t >= s))
                .map(|(_, l)| l.clone())
                .collect()
        })
    } else {
        Vec::new()
    };
    if let Some(n) = tail {
        lines = lines.split_off(lines.len().saturating_sub(n));
    }
    let mut head = String::from("--------- beginning of events\n");
    if !events {
        head = format!(
            "--------- beginning of {}\n",
            buffers.first().copied().unwrap_or("main")
        );
    }
    let out = CmdOutput::ok(format!("{head}{}", lines.concat()));
    if dump_only {
        return (out, None);
    }
    let rx = if events { rx } else { broadcast::channel(1).1 };
    (out, Some(Follow::new(rx)))
}

/// `MM-DD HH:MM:SS.mmm` in the phone's current year, or epoch seconds `N.mmm`.
fn parse_logcat_time(device: &Device, v: &str) -> Option<i64> {
    if let Ok(secs) = v.parse::<f64>() {
        return Some((secs * 1000.0) as i64);
    }
    let (date, time) = v.trim().split_once(' ')?;
    let (mo, d) = date.split_once('-')?;
    let mut hms = time.split([':', '.']);
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let s: i64 = hms.next()?.parse().ok()?;
    let ms: i64 = hms.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let (mo, d): (u32, u32) = (mo.parse().ok()?, d.parse().ok()?);
    device.read(|st| {
        let now = st.clock.now();
        let c = st.clock.civil(now);
        // Walk back from today to the named day; logcat times never lie in the future by much.
        let mut day_start =
            now - i64::from(c.hour) * 3600 - i64::from(c.minute) * 60 - i64::from(c.second);
        for _ in 0..400 {
            let cc = st.clock.civil(day_start);
            if cc.month == mo && cc.day == d {
                return Some((day_start + h * 3600 + mi * 60 + s) * 1000 + ms);
            }
            day_start -= 86_400;
        }
        None
    })
}
