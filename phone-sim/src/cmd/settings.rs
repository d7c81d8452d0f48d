//! `settings get|put|list`: the settings table, where `secure/default_input_method` also
//! switches the keyboard.

use super::CmdOutput;
use crate::device::Device;

pub(super) fn run(device: &Device, args: &[&str]) -> CmdOutput {
    let (Some(op), Some(ns)) = (args.first(), args.get(1)) else {
        return CmdOutput::err(
            "usage:  settings [--user <USER_ID> | current] get namespace key\n",
            255,
        );
    };
    match *op {
        "get" => {
            let key = format!("{ns}/{}", args.get(2).unwrap_or(&""));
            CmdOutput::ok(format!(
                "{}\n",
                device
                    .read(|st| st.settings.get(&key).cloned())
                    .unwrap_or_else(|| "null".into())
            ))
        }
        "put" => {
            let (Some(k), Some(v)) = (args.get(2), args.get(3)) else {
                return CmdOutput::err("settings: missing value\n", 255);
            };
            let key = format!("{ns}/{k}");
            device.with(|st| {
                if key == "secure/default_input_method" {
                    st.ime = v.to_string();
                }
                st.settings.insert(key, v.to_string());
            });
            CmdOutput::default()
        }
        "list" => {
            let prefix = format!("{ns}/");
            CmdOutput::ok(device.read(|st| {
                st.settings
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| format!("{k}={v}\n")))
                    .collect::<String>()
            }))
        }
        _ => CmdOutput::err(format!("Invalid command: {op}\n"), 255),
    }
}
