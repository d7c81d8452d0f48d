//! What the controller did, for live display (`tapwire demo`, `run --activity-json`) and
//! tests: messages read, replies sent or failed, devices coming and going.

use serde::Serialize;
use tapwire_device_agent::agent::DeviceStatus;
use tapwire_device_agent::prepare::PrepareReport;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "activity", rename_all = "snake_case")]
pub enum Activity {
    Received {
        device: String,
        conversation: String,
        sender: Option<String>,
        text: Option<String>,
        is_self: bool,
    },
    Replied {
        device: String,
        conversation: String,
        text: String,
    },
    ReplyFailed {
        device: String,
        conversation: String,
        reason: String,
    },
    Device {
        device: String,
        status: DeviceStatus,
    },
    /// The phone was made readable before its actor started (`prepare`).
    Prepared {
        device: String,
        report: PrepareReport,
    },
}
