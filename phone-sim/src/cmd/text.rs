//! The text tools scripts pipe output through: `echo`, `grep`, `head`, `tail`, `wc`.

use super::CmdOutput;

/// A line filter (`grep`) applied to a following command's output.
#[derive(Debug, Clone)]
pub(super) struct LineFilter {
    pattern: Vec<String>,
    invert: bool,
    ignore_case: bool,
}

impl LineFilter {
    /// `grep`'s options and pattern; `None` when no pattern is given.
    pub(super) fn from_grep_args(args: &[String]) -> Option<LineFilter> {
        let mut invert = false;
        let mut ignore_case = false;
        let mut extended = false;
        let mut pattern = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-e" => pattern = it.next().cloned(),
                s if s.starts_with('-') && s.len() > 1 && pattern.is_none() => {
                    for c in s[1..].chars() {
                        match c {
                            'v' => invert = true,
                            'i' => ignore_case = true,
                            'E' => extended = true,
                            _ => {}
                        }
                    }
                }
                _ if pattern.is_none() => pattern = Some(a.clone()),
                _ => {}
            }
        }
        let pattern = pattern?;
        // Alternation is the only regex feature scripts use with these outputs.
        let pattern = if extended {
            pattern.split('|').map(str::to_string).collect()
        } else {
            pattern.split("\\|").map(str::to_string).collect()
        };
        Some(LineFilter {
            pattern,
            invert,
            ignore_case,
        })
    }

    pub(super) fn matches(&self, line: &str) -> bool {
        let hit = self.pattern.iter().any(|p| {
            if self.ignore_case {
                line.to_lowercase().contains(&p.to_lowercase())
            } else {
                line.contains(p.as_str())
            }
        });
        hit != self.invert
    }
}

fn text_of(stdin: &Option<Vec<u8>>) -> String {
    stdin
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

pub(super) fn echo(args: &[&str]) -> CmdOutput {
    let mut newline = true;
    let mut words = args;
    if words.first() == Some(&"-n") {
        newline = false;
        words = &words[1..];
    }
    let mut s = words.join(" ");
    if newline {
        s.push('\n');
    }
    CmdOutput::ok(s)
}

/// Exits 1 when no line matches, so `grep x && …` works as in a real shell.
pub(super) fn grep(args: &[String], stdin: &Option<Vec<u8>>) -> CmdOutput {
    match LineFilter::from_grep_args(args) {
        Some(f) => {
            let text = text_of(stdin);
            let lines: String = text
                .lines()
                .filter(|l| f.matches(l))
                .map(|l| format!("{l}\n"))
                .collect();
            let code = if lines.is_empty() { 1 } else { 0 };
            CmdOutput {
                stdout: lines.into_bytes(),
                stderr: Vec::new(),
                code,
            }
        }
        None => CmdOutput::err(
            "usage: grep [-EFHIabcdhilnoqrsvwxz] [-ABCm NUM] [-f FILE] [-e REGEX]... [REGEX] [FILE...]\n",
            2,
        ),
    }
}

/// `head` or `tail` (as `name` says) of stdin: `-n N` or `-N` lines, 10 by default.
pub(super) fn head_or_tail(name: &str, args: &[&str], stdin: &Option<Vec<u8>>) -> CmdOutput {
    let n = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            if *a == "-n" {
                args.get(i + 1).and_then(|v| v.parse().ok())
            } else {
                a.strip_prefix('-').and_then(|v| v.parse().ok())
            }
        })
        .unwrap_or(10usize);
    let text = text_of(stdin);
    let lines: Vec<&str> = text.lines().collect();
    let pick: Vec<&str> = if name == "head" {
        lines.iter().take(n).copied().collect()
    } else {
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .copied()
            .collect()
    };
    CmdOutput::ok(pick.iter().map(|l| format!("{l}\n")).collect::<String>())
}

/// `wc` counts lines only: that is all scripts ask of it here.
pub(super) fn wc(stdin: &Option<Vec<u8>>) -> CmdOutput {
    CmdOutput::ok(format!("{}\n", text_of(stdin).lines().count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grep_options() {
        let f = LineFilter::from_grep_args(&["-iE".to_string(), "focus|app".to_string()])
            .expect("filter");
        assert!(f.matches("mCurrentFocus=x"));
        assert!(f.matches("mFocusedApp=y"));
        assert!(!f.matches("other"));
        let v = LineFilter::from_grep_args(&["-v".to_string(), "x".to_string()]).expect("filter");
        assert!(v.matches("abc") && !v.matches("xyz"));
    }
}
