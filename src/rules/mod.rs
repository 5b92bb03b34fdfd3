//! Rules turn tracks into village facts: people crossing the gate line (in/out, occupancy), and
//! later zones (intrusion, loitering, crowding) and alert rules. Pure logic: no I/O, no clock.

pub mod line;

pub use line::{Anchor, CountingParams, Counts, Crossing, Direction, LineCounter, LineSpec};
