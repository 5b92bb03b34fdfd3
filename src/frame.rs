//! The decoded picture that travels from ingest to detection: tightly packed RGB8.

use std::sync::Arc;

use crate::geometry::BBox;

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

/// The person's box with a margin, cut from the picture (at least 1x1).
pub fn person_crop(image: &image::RgbImage, bbox: &BBox) -> image::RgbImage {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let m = 0.1 * bbox.height();
    let b = BBox::new(bbox.x1 - m, bbox.y1 - m, bbox.x2 + m, bbox.y2 + m).clamp(w, h);
    let (x, y) = (b.x1.max(0.0) as u32, b.y1.max(0.0) as u32);
    let cw = ((b.x2 - b.x1).max(1.0) as u32)
        .min(image.width().saturating_sub(x))
        .max(1);
    let ch = ((b.y2 - b.y1).max(1.0) as u32)
        .min(image.height().saturating_sub(y))
        .max(1);
    image::imageops::crop_imm(
        image,
        x.min(image.width() - 1),
        y.min(image.height() - 1),
        cw,
        ch,
    )
    .to_image()
}
