//! `settings [--user USER] get|put|delete|list|reset NAMESPACE [KEY [VALUE [TAG] [default]]]`,
//! parsed and answered as Android's SettingsService shell command does: its messages, its
//! exit status (-1, which the shell shows as 255), `null` for a missing key.

use super::CmdOutput;
use crate::device::Device;
use crate::settings::Namespace;

const HELP: &str = "Settings provider (settings) commands:
  help
      Print this help text.
  get [--user <USER_ID> | current] NAMESPACE KEY
      Retrieve the current value of KEY.
  put [--user <USER_ID> | current] NAMESPACE KEY VALUE [TAG] [default]
      Change the contents of KEY to VALUE.
      TAG to associate with the setting.
      {default} to set as the default, case-insensitive only for global/secure namespace
  delete [--user <USER_ID> | current] NAMESPACE KEY
      Delete the entry for KEY.
  reset [--user <USER_ID> | current] NAMESPACE {PACKAGE_NAME | RESET_MODE}
      Reset the global/secure table for a package with mode.
      RESET_MODE is one of {untrusted_defaults, untrusted_clear, trusted_defaults}, case-insensitive
  list [--user <USER_ID> | current] NAMESPACE
      Print all defined keys.
      NAMESPACE is one of {system, secure, global}, case-insensitive
";

/// The phone has one user, 0 (`current` is 0 too).
const USER: i64 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Put,
    Delete,
    List,
    Reset,
}

#[derive(Debug)]
struct Parsed<'a> {
    user: Option<i64>,
    verb: Verb,
    ns: Namespace,
    key: &'a str,
    value: &'a str,
}

fn fail(message: impl Into<String>) -> CmdOutput {
    CmdOutput::err(format!("{}\n", message.into()), 255)
}

/// Follows `MyShellCommand.onCommand`: `--user` may come anywhere before the arguments it
/// does not consume, the verb and namespace are case-insensitive, a put takes an optional tag
/// and an optional trailing `default`.
fn parse<'a>(args: &[&'a str]) -> Result<Parsed<'a>, CmdOutput> {
    let mut user = None;
    let mut verb = None;
    let mut ns = None;
    let mut key: Option<&str> = None;
    let mut value: Option<&str> = None;
    let mut tag: Option<&str> = None;
    let mut valid = false;
    let mut i = 0;
    let next_is_last = |i: usize| i + 1 >= args.len();
    while i < args.len() {
        let arg = args[i];
        if arg == "--user" {
            if user.is_some() {
                break;
            }
            i += 1;
            let Some(u) = args.get(i) else {
                return Err(fail("Error: Argument expected after \"--user\""));
            };
            user = Some(if *u == "current" || *u == "cur" {
                USER
            } else {
                u.parse::<i64>().map_err(|_| {
                    fail(format!(
                        "Exception occurred while executing '{}':\njava.lang.NumberFormatException: For input string: \"{u}\"",
                        args[0]
                    ))
                })?
            });
        } else if verb.is_none() {
            verb = Some(match arg.to_ascii_lowercase().as_str() {
                "get" => Verb::Get,
                "put" => Verb::Put,
                "delete" => Verb::Delete,
                "list" => Verb::List,
                "reset" => Verb::Reset,
                _ => return Err(fail(format!("Invalid command: {arg}"))),
            });
        } else if ns.is_none() {
            ns = Some(
                Namespace::parse(arg).ok_or_else(|| fail(format!("Invalid namespace '{arg}'")))?,
            );
            if verb == Some(Verb::List) {
                valid = true;
                break;
            }
        } else if verb == Some(Verb::Reset) {
            // A package name or reset mode, and for a package an optional tag.
            key = Some(arg);
            if args.len() - i > 2 {
                return Err(fail("Too many arguments"));
            }
            valid = true;
            break;
        } else if matches!(verb, Some(Verb::Get | Verb::Delete)) {
            key = Some(arg);
            if !next_is_last(i) {
                return Err(fail("Too many arguments"));
            }
            valid = true;
            break;
        } else if key.is_none() {
            key = Some(arg);
        } else if value.is_none() {
            value = Some(arg);
            valid = true;
        } else if tag.is_none() {
            if arg.eq_ignore_ascii_case("default") {
                if !next_is_last(i) {
                    return Err(fail("Too many arguments"));
                }
                break;
            }
            tag = Some(arg);
        } else {
            if !arg.eq_ignore_ascii_case("default") {
                return Err(fail("Argument expected to be 'default'"));
            }
            if !next_is_last(i) {
                return Err(fail("Too many arguments"));
            }
            break;
        }
        i += 1;
    }
    let (Some(verb), Some(ns), true) = (verb, ns, valid) else {
        return Err(fail("Bad arguments"));
    };
    Ok(Parsed {
        user,
        verb,
        ns,
        key: key.unwrap_or(""),
        value: value.unwrap_or(""),
    })
}

pub(super) fn run(device: &Device, args: &[&str]) -> CmdOutput {
    if args.is_empty() {
        // BasicShellCommandHandler prints the help for a missing command and still fails.
        return CmdOutput {
            stdout: HELP.into(),
            stderr: Vec::new(),
            code: 255,
        };
    }
    let p = match parse(args) {
        Ok(p) => p,
        Err(out) => return out,
    };
    if let Some(user) = p.user {
        if matches!(p.verb, Verb::Delete | Verb::List) {
            return fail("--user not supported for delete and list.");
        }
        if user != USER {
            return fail(format!("Invalid user: {user}"));
        }
    }
    match p.verb {
        Verb::Get => {
            let value = device.read(|st| st.settings.get(p.ns, p.key).map(str::to_string));
            CmdOutput::ok(format!("{}\n", value.as_deref().unwrap_or("null")))
        }
        Verb::Put => {
            device.with(|st| st.put_setting(p.ns, p.key, p.value));
            CmdOutput::default()
        }
        Verb::Delete => {
            let rows = device.with(|st| st.settings.delete(p.ns, p.key));
            CmdOutput::ok(format!("Deleted {} rows\n", u8::from(rows)))
        }
        Verb::List => CmdOutput::ok(device.read(|st| {
            st.settings
                .list(p.ns)
                .into_iter()
                .map(|line| line + "\n")
                .collect::<String>()
        })),
        // The sim keeps no record of which package set what, so a reset changes nothing.
        Verb::Reset => CmdOutput::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Device {
        crate::build_device(&crate::SimConfig {
            scenario: crate::Scenario::default(),
            ..crate::SimConfig::default()
        })
        .expect("device")
    }

    fn sh(d: &Device, line: &str) -> CmdOutput {
        let args: Vec<&str> = line.split_whitespace().collect();
        run(d, &args)
    }

    fn out(o: &CmdOutput) -> String {
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn err(o: &CmdOutput) -> String {
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    #[test]
    fn get_put_delete_as_android_prints_them() {
        let d = phone();
        let o = sh(&d, "get secure enabled_accessibility_services");
        assert_eq!((out(&o).as_str(), o.code), ("null\n", 0));
        assert_eq!(out(&sh(&d, "get secure accessibility_enabled")), "0\n");
        assert_eq!(out(&sh(&d, "get global window_animation_scale")), "1.0\n");
        assert_eq!(out(&sh(&d, "get secure touch_exploration_enabled")), "0\n");

        let o = sh(&d, "put secure accessibility_enabled 1");
        assert_eq!((o.stdout.len(), o.stderr.len(), o.code), (0, 0, 0));
        assert_eq!(out(&sh(&d, "GET SECURE accessibility_enabled")), "1\n");
        assert_eq!(out(&sh(&d, "get global accessibility_enabled")), "null\n");

        assert_eq!(
            out(&sh(&d, "delete secure accessibility_enabled")),
            "Deleted 1 rows\n"
        );
        assert_eq!(
            out(&sh(&d, "delete secure accessibility_enabled")),
            "Deleted 0 rows\n"
        );
        assert_eq!(out(&sh(&d, "get secure accessibility_enabled")), "null\n");
    }

    #[test]
    fn errors_and_exit_codes() {
        let d = phone();
        let o = sh(&d, "get secrets foo");
        assert_eq!(
            (err(&o).as_str(), o.code),
            ("Invalid namespace 'secrets'\n", 255)
        );
        assert!(o.stdout.is_empty());
        let o = sh(&d, "frob secure foo");
        assert_eq!((err(&o).as_str(), o.code), ("Invalid command: frob\n", 255));
        let o = sh(&d, "put secure only_key");
        assert_eq!((err(&o).as_str(), o.code), ("Bad arguments\n", 255));
        let o = sh(&d, "get secure a b");
        assert_eq!((err(&o).as_str(), o.code), ("Too many arguments\n", 255));
        let o = sh(&d, "put secure k v tag notdefault");
        assert_eq!(err(&o), "Argument expected to be 'default'\n");
        let o = sh(&d, "--user 10 get secure k");
        assert_eq!((err(&o).as_str(), o.code), ("Invalid user: 10\n", 255));
        let o = sh(&d, "--user 0 delete secure k");
        assert_eq!(err(&o), "--user not supported for delete and list.\n");
        let o = sh(&d, "--user x get secure k");
        assert!(err(&o).contains("NumberFormatException"), "{}", err(&o));
        assert_eq!(o.code, 255);
    }

    #[test]
    fn user_tag_and_default_are_accepted() {
        let d = phone();
        for line in [
            "--user 0 put secure a 1",
            "--user current put secure b 2",
            "put --user 0 secure c 3",
            "put secure d 4 default",
            "put secure e 5 mytag",
            "put secure f 6 mytag DEFAULT",
        ] {
            let o = sh(&d, line);
            assert_eq!((o.code, err(&o)), (0, String::new()), "{line}");
        }
        for (k, v) in [
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("e", "5"),
            ("f", "6"),
        ] {
            assert_eq!(
                out(&sh(&d, &format!("--user current get secure {k}"))),
                format!("{v}\n")
            );
        }
    }

    #[test]
    fn list_is_sorted_and_the_input_method_switches_the_keyboard() {
        let d = phone();
        let listing = out(&sh(&d, "list global"));
        assert_eq!(
            listing,
            "animator_duration_scale=1.0\ntransition_animation_scale=1.0\nwindow_animation_scale=1.0\n"
        );
        sh(
            &d,
            "put secure default_input_method com.sohu.inputmethod.sogou.vivo/.SogouIME",
        );
        assert_eq!(
            d.read(|st| st.ime.clone()),
            "com.sohu.inputmethod.sogou.vivo/.SogouIME"
        );
        assert!(out(&sh(&d, "list secure")).contains("default_input_method=com.sohu"));
    }
}
