//! Rules turn tracks into village facts: people crossing the gate line (in/out, occupancy),
//! people in zones (intrusion, loitering, crowding), and the alert rules on top (curfew entry,
//! no mask at the gate, cooldown, severities). Pure logic: no I/O, no clock (time is passed in).
//!
//! Uses (of the crate, besides its own folder): detect, events, geometry, track.

pub mod alert;
pub mod camera;
pub mod line;
pub mod mask;
pub mod preview;
pub mod truth;
pub mod zone;

pub use crate::events::{Counts, Direction};
pub use alert::{AlertKey, Cooldown, LineRules, Severities, Window};
pub use camera::{CameraChain, Finding, Moment};
pub use line::{Anchor, CountingParams, Crossing, LineCounter, LineSpec, Tick};
pub use mask::{Look, MaskParams, MaskWatch};
pub use preview::{LinePreview, Preview, PreviewCrossing, Recent, RecentLimits};
pub use zone::{ZoneAlert, ZoneAlertKind, ZoneKind, ZoneParams, ZoneSpec, ZoneWatch};
