//! The phone's clock: wall time plus an adjustable offset, shown in the phone's time zone,
//! and the relative date formats WeChat uses for row times and time dividers.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Added to the host's wall time, so tests can move the phone's time forward.
    pub offset_secs: i64,
    /// The phone's zone; Chinese phones run at UTC+8.
    pub utc_offset_minutes: i32,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            offset_secs: 0,
            utc_offset_minutes: 480,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Monday … 6 = Sunday
    pub weekday: u32,
    pub days: i64,
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Clock {
    pub fn now(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        wall + self.offset_secs
    }

    pub fn now_millis(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        wall + self.offset_secs * 1000
    }

    pub fn civil(&self, ts: i64) -> Civil {
        let local = ts + i64::from(self.utc_offset_minutes) * 60;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: ((secs % 3600) / 60) as u32,
            second: (secs % 60) as u32,
            weekday: (days + 3).rem_euclid(7) as u32,
            days,
        }
    }

    pub fn hhmm(&self, ts: i64) -> String {
        let c = self.civil(ts);
        format!("{:02}:{:02}", c.hour, c.minute)
    }

    fn day_word(&self, ts: i64) -> Option<String> {
        let c = self.civil(ts);
        let today = self.civil(self.now()).days;
        let ago = today - c.days;
        match ago {
            0 => None,
            1 => Some("昨天".into()),
            2..=6 => Some(format!(
                "周{}",
                ["一", "二", "三", "四", "五", "六", "日"][c.weekday as usize]
            )),
            _ => Some(format!("{}年{}月{}日", c.year, c.month, c.day)),
        }
    }

    /// Time divider in a chat: `10:07`, `昨天 12:51`, `周四 12:09`, `2025年12月29日 10:07`.
    pub fn divider(&self, ts: i64) -> String {
        match self.day_word(ts) {
            None => self.hhmm(ts),
            Some(w) => format!("{w} {}", self.hhmm(ts)),
        }
    }

    /// Time on a conversation-list row: `09:44`, `昨天`, `周四`, `2025年12月24日`.
    pub fn row_time(&self, ts: i64) -> String {
        self.day_word(ts).unwrap_or_else(|| self.hhmm(ts))
    }

    /// `MM-DD HH:MM:SS.mmm`, logcat's threadtime stamp.
    pub fn logcat_stamp(&self, millis: i64) -> String {
        let c = self.civil(millis.div_euclid(1000));
        format!(
            "{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            millis.rem_euclid(1000)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        let c = Clock {
            offset_secs: 0,
            utc_offset_minutes: 480,
        };
        // 2025-12-29 02:07 UTC = 10:07 in Beijing, a Monday.
        let t = 1_766_974_020;
        let civ = c.civil(t);
        assert_eq!(
            (civ.year, civ.month, civ.day, civ.hour, civ.minute),
            (2025, 12, 29, 10, 7)
        );
        assert_eq!(civ.weekday, 0);
        assert_eq!(c.divider(t), "2025年12月29日 10:07");
        let now = c.now();
        assert_eq!(c.row_time(now), c.hhmm(now));
        assert_eq!(c.row_time(now - 86_400), "昨天");
        assert!(c.divider(now - 86_400).starts_with("昨天 "));
    }
}
