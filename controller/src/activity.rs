//! What the controller did, for live display (`tapwire demo`, `run --activity-json`) and
//! tests: messages read, replies sent or failed, devices coming and going.

use serde::Serialize;
use tapwire_device_agent::agent::DeviceStatus;

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
}
