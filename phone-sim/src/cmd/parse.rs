//! Splits a command line the way `sh` would, as far as the commands adb clients send need:
//! quotes, backslashes, `;`, `&&`, `||`, `|`, `$?`, and `>`/`2>`/`2>&1` redirections.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("syntax error: unterminated quoted string")]
    Unterminated,
    #[error("syntax error: unexpected '{0}'")]
    Unexpected(String),
}

/// Stands for `$?` inside a word until the command runs and the last status is known.
pub const LAST_STATUS: char = '\u{E000}';

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    StdoutTo(String),
    StdoutAppend(String),
    StderrTo(String),
    StderrToStdout,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Simple {
    pub argv: Vec<String>,
    pub redirects: Vec<Redirect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    /// `;` or end of line
    Always,
    And,
    Or,
}

/// A pipeline and how it joins the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub pipeline: Vec<Simple>,
    pub then: Connector,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Op(&'static str),
}

fn tokenize(line: &str) -> Result<Vec<Tok>, ParseError> {
    let mut toks = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = line.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(ParseError::Unterminated),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some('\n') => {}
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(ParseError::Unterminated),
                        },
                        Some('$') if it.peek() == Some(&'?') => {
                            it.next();
                            cur.push(LAST_STATUS);
                        }
                        Some(ch) => cur.push(ch),
                        None => return Err(ParseError::Unterminated),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = it.next()
                    && ch != '\n'
                {
                    cur.push(ch);
                }
            }
            '$' if it.peek() == Some(&'?') => {
                it.next();
                in_word = true;
                cur.push(LAST_STATUS);
            }
            ' ' | '\t' | '\n' | ';' | '&' | '|' | '>' | '<' => {
                // `2>` and `2>&1`: a lone "2" word directly before '>' is a file descriptor.
                if c == '>' && in_word && cur == "2" {
                    cur.clear();
                    in_word = false;
                    if it.peek() == Some(&'&') {
                        it.next();
                        if it.next() != Some('1') {
                            return Err(ParseError::Unexpected("&".into()));
                        }
                        toks.push(Tok::Op("2>&1"));
                    } else {
                        toks.push(Tok::Op("2>"));
                    }
                    continue;
                }
                if in_word {
                    toks.push(Tok::Word(std::mem::take(&mut cur)));
                    in_word = false;
                }
                match c {
                    ';' | '\n' => toks.push(Tok::Op(";")),
                    '&' if it.peek() == Some(&'&') => {
                        it.next();
                        toks.push(Tok::Op("&&"));
                    }
                    // A trailing `&` backgrounds the job; the sim runs it in the foreground.
                    '&' => toks.push(Tok::Op(";")),
                    '|' if it.peek() == Some(&'|') => {
                        it.next();
                        toks.push(Tok::Op("||"));
                    }
                    '|' => toks.push(Tok::Op("|")),
                    '>' if it.peek() == Some(&'>') => {
                        it.next();
                        toks.push(Tok::Op(">>"));
                    }
                    '>' => toks.push(Tok::Op(">")),
                    '<' => toks.push(Tok::Op("<")),
                    _ => {}
                }
            }
            ch => {
                in_word = true;
                cur.push(ch);
            }
        }
    }
    if in_word {
        toks.push(Tok::Word(cur));
    }
    Ok(toks)
}

pub fn parse(line: &str) -> Result<Vec<Step>, ParseError> {
    let toks = tokenize(line)?;
    let mut steps = Vec::new();
    let mut pipeline: Vec<Simple> = Vec::new();
    let mut cmd = Simple::default();
    let mut it = toks.into_iter().peekable();
    while let Some(t) = it.next() {
        match t {
            Tok::Word(w) => cmd.argv.push(w),
            Tok::Op(op @ (">" | ">>" | "2>" | "<")) => {
                let Some(Tok::Word(target)) = it.next() else {
                    return Err(ParseError::Unexpected(op.to_string()));
                };
                match op {
                    ">" => cmd.redirects.push(Redirect::StdoutTo(target)),
                    ">>" => cmd.redirects.push(Redirect::StdoutAppend(target)),
                    "2>" => cmd.redirects.push(Redirect::StderrTo(target)),
                    _ => {} // stdin redirection: nothing here reads files as stdin
                }
            }
            Tok::Op("2>&1") => cmd.redirects.push(Redirect::StderrToStdout),
            Tok::Op("|") => {
                if cmd.argv.is_empty() {
                    return Err(ParseError::Unexpected("|".into()));
                }
                pipeline.push(std::mem::take(&mut cmd));
            }
            Tok::Op(op) => {
                let then = match op {
                    "&&" => Connector::And,
                    "||" => Connector::Or,
                    _ => Connector::Always,
                };
                if cmd.argv.is_empty() && pipeline.is_empty() {
                    if then == Connector::Always {
                        continue;
                    }
                    return Err(ParseError::Unexpected(op.to_string()));
                }
                if cmd.argv.is_empty() {
                    return Err(ParseError::Unexpected(op.to_string()));
                }
                pipeline.push(std::mem::take(&mut cmd));
                steps.push(Step {
                    pipeline: std::mem::take(&mut pipeline),
                    then,
                });
            }
        }
    }
    if !cmd.argv.is_empty() {
        pipeline.push(cmd);
    } else if !pipeline.is_empty() {
        return Err(ParseError::Unexpected("|".into()));
    }
    if !pipeline.is_empty() {
        steps.push(Step {
            pipeline,
            then: Connector::Always,
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Vec<Vec<String>>> {
        parse(line)
            .expect("parses")
            .into_iter()
            .map(|s| s.pipeline.into_iter().map(|c| c.argv).collect())
            .collect()
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            argv(r#"echo 'a b' "c \"d\"" e\ f"#),
            vec![vec![vec!["echo", "a b", "c \"d\"", "e f"]]]
        );
        assert_eq!(
            argv("am broadcast -a ADB_INPUT_TEXT --es msg '你好 世界'"),
            vec![vec![vec![
                "am",
                "broadcast",
                "-a",
                "ADB_INPUT_TEXT",
                "--es",
                "msg",
                "你好 世界"
            ]]]
        );
    }

    #[test]
    fn sequences_and_pipes() {
        let steps = parse("dumpsys window | grep mCurrentFocus; echo $? && false || echo no")
            .expect("parses");
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0].pipeline.len(), 2);
        assert_eq!(steps[0].then, Connector::Always);
        assert_eq!(
            steps[1].pipeline[0].argv,
            vec!["echo".to_string(), LAST_STATUS.to_string()]
        );
        assert_eq!(steps[1].then, Connector::And);
        assert_eq!(steps[2].then, Connector::Or);
    }

    #[test]
    fn redirections() {
        let steps = parse("uiautomator dump /sdcard/x.xml > /dev/null 2>&1").expect("parses");
        assert_eq!(
            steps[0].pipeline[0].argv,
            vec!["uiautomator", "dump", "/sdcard/x.xml"]
        );
        assert_eq!(
            steps[0].pipeline[0].redirects,
            vec![
                Redirect::StdoutTo("/dev/null".into()),
                Redirect::StderrToStdout
            ]
        );
        let steps = parse("ls /nope 2>/dev/null").expect("parses");
        assert_eq!(
            steps[0].pipeline[0].redirects,
            vec![Redirect::StderrTo("/dev/null".into())]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse("echo 'open"), Err(ParseError::Unterminated));
        assert!(parse("| grep x").is_err());
        assert!(parse("echo a |").is_err());
        assert_eq!(parse("").expect("empty ok"), vec![]);
    }
}
