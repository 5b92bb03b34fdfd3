//! The decoded picture that travels from ingest to detection: tightly packed RGB8.

use std::sync::Arc;

/// One decoded video frame. The pixels are shared (`Arc`) because the same frame may go to the
/// detector, the snapshot writer and the admin UI's live picture without copies.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Tightly packed RGB8, `width * height * 3` bytes, rows top to bottom.
    pub image: Arc<image::RgbImage>,
    /// Position in the stream, counted from 0 for files; a running counter for live cameras.
    pub index: u64,
    /// Presentation time in nanoseconds from the start of the stream, when known.
    pub pts_ns: Option<u64>,
}

impl Frame {
    pub fn width(&self) -> u32 {
        self.image.width()
    }
    pub fn height(&self) -> u32 {
        self.image.height()
    }
}
