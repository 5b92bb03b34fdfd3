//! The snapshot of an incident: the event's frame as JPEG with the person's box drawn, so a
//! guard sees at a glance whom the alert is about.
//!
//! Drawing is plain pixel work (no font: a small filled tab in the box's colour marks the label;
//! the label's words are in the event itself). Encoding a 360p frame costs about 0.3 ms, 720p
//! about 1.2 ms (FACTS.md), small enough for the event path's worker. The file appears
//! atomically (`.part`, fsync, rename), like clips.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

use super::clips::files::{commit, discard, io_hint, is_disk_full, part_path};
use crate::geometry::BBox;

/// JPEG quality: boxes and faces stay crisp at about 30-60 kB for 360p.
pub const JPEG_QUALITY: u8 = 85;

/// Why a snapshot could not be written; names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{}: the disk is full; free space, or lower [store] max_gb / retention_days", path.display())]
    DiskFull { path: PathBuf },

    #[error("{}: cannot {action}: {source}; {}", path.display(), io_hint(source))]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },

    #[error("{}: cannot encode the picture as JPEG: {reason}", path.display())]
    Encode { path: PathBuf, reason: String },
}

impl SnapshotError {
    fn io(path: &Path, action: &'static str, source: std::io::Error) -> SnapshotError {
        if is_disk_full(&source) {
            SnapshotError::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            SnapshotError::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
        }
    }
}

/// The colour of a label: the same label always gets the same colour.
pub fn label_colour(label: &str) -> Rgb<u8> {
    match label {
        "person" => Rgb([255, 196, 0]),
        "no_mask" => Rgb([235, 30, 30]),
        "mask" => Rgb([40, 200, 70]),
        other => {
            const PALETTE: [[u8; 3]; 6] = [
                [0, 170, 255],
                [255, 0, 200],
                [255, 120, 0],
                [120, 255, 0],
                [160, 80, 255],
                [0, 230, 200],
            ];
            let h = other
                .bytes()
                .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
            Rgb(PALETTE[h as usize % PALETTE.len()])
        }
    }
}

/// Line thickness for a picture: 2 px up to 576 lines, 3 px at 720, 4 px at 1080 and above.
fn thickness(height: u32) -> u32 {
    (height / 240).clamp(2, 4)
}

/// Draw each box (source-image pixels) as a rectangle in its label's colour, with a small
/// filled tab at its top-left corner; boxes are clipped to the picture, and boxes outside it
/// or not finite are skipped.
fn draw_boxes(img: &mut RgbImage, boxes: &[(BBox, &str)]) {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let t = thickness(h);
    for (b, label) in boxes {
        let colour = label_colour(label);
        let Some((x1, y1, x2, y2)) = pixel_box(b, w, h) else {
            continue;
        };
        // the outline lies inside the box, so a box touching the border stays visible
        let t_x = t.min(x2 - x1 + 1);
        let t_y = t.min(y2 - y1 + 1);
        fill(img, x1, y1, x2, y1 + t_y - 1, colour); // top
        fill(img, x1, y2 + 1 - t_y, x2, y2, colour); // bottom
        fill(img, x1, y1, x1 + t_x - 1, y2, colour); // left
        fill(img, x2 + 1 - t_x, y1, x2, y2, colour); // right
        // the label tab: above the box when there is room, else just inside its top
        let tab_h = 4 * t;
        let tab_w = (8 * t).min(x2 - x1 + 1);
        let (ty1, ty2) = if y1 >= tab_h {
            (y1 - tab_h, y1 - 1)
        } else {
            (y1, (y1 + tab_h - 1).min(h - 1))
        };
        fill(img, x1, ty1, x1 + tab_w - 1, ty2, colour);
    }
}

/// The box's pixels, inclusive, clipped to a `w` x `h` picture; `None` when nothing is inside.
fn pixel_box(b: &BBox, w: u32, h: u32) -> Option<(u32, u32, u32, u32)> {
    let vals = [b.x1, b.y1, b.x2, b.y2];
    if vals.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (lx, hx) = (b.x1.min(b.x2), b.x1.max(b.x2));
    let (ly, hy) = (b.y1.min(b.y2), b.y1.max(b.y2));
    // pixel i covers [i, i+1): the box covers floor(lo) ..= ceil(hi) - 1
    let clip = |lo: f32, hi: f32, n: u32| -> Option<(u32, u32)> {
        let a = lo.floor().max(0.0);
        let z = (hi.ceil() - 1.0).min(n as f32 - 1.0);
        (a <= z).then_some((a as u32, z as u32))
    };
    let (x1, x2) = clip(lx, hx, w)?;
    let (y1, y2) = clip(ly, hy, h)?;
    Some((x1, y1, x2, y2))
}

fn fill(img: &mut RgbImage, x1: u32, y1: u32, x2: u32, y2: u32, c: Rgb<u8>) {
    for y in y1..=y2 {
        for x in x1..=x2 {
            img.put_pixel(x, y, c);
        }
    }
}

/// `img` as JPEG at [`JPEG_QUALITY`].
pub fn encode_jpeg(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut jpeg = Vec::with_capacity(64 * 1024);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
        .encode_image(img)?;
    Ok(jpeg)
}

/// Write `frame` with `boxes` drawn as JPEG to `path` (parent created if needed), atomically;
/// returns the file's size.
pub fn write_snapshot(
    frame: &RgbImage,
    boxes: &[(BBox, &str)],
    path: &Path,
) -> Result<u64, SnapshotError> {
    let mut img = frame.clone();
    draw_boxes(&mut img, boxes);
    let jpeg = encode_jpeg(&img).map_err(|e| SnapshotError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| SnapshotError::io(path, "create its directory", e))?;
    }
    let part = part_path(path);
    let written = std::fs::write(&part, &jpeg)
        .map_err(|e| SnapshotError::io(path, "write", e))
        .and_then(|()| {
            commit(&part, path).map_err(|e| SnapshotError::io(path, "finish (fsync and rename)", e))
        });
    if let Err(e) = written {
        discard(&part);
        return Err(e);
    }
    Ok(jpeg.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

    #[test]
    fn the_rectangle_is_drawn_and_nothing_outside_it_changes() {
        let mut img = RgbImage::new(100, 80);
        let b = BBox::new(20.0, 30.0, 60.0, 70.0);
        draw_boxes(&mut img, &[(b, "person")]);
        let c = label_colour("person");
        // edges, 2 px thick, inside the box
        for (x, y) in [
            (20, 50),
            (21, 50),
            (59, 50),
            (58, 50),
            (40, 30),
            (40, 31),
            (40, 69),
        ] {
            assert_eq!(*img.get_pixel(x, y), c, "({x},{y})");
        }
        // just inside the outline, inside, and outside the box
        for (x, y) in [
            (22, 50),
            (57, 50),
            (40, 50),
            (40, 32),
            (19, 50),
            (60, 50),
            (40, 70),
        ] {
            assert_eq!(*img.get_pixel(x, y), BLACK, "({x},{y})");
        }
        // the tab sits above the top-left corner, 8 px high, 16 px wide
        assert_eq!(*img.get_pixel(20, 22), c);
        assert_eq!(*img.get_pixel(35, 29), c);
        assert_eq!(*img.get_pixel(36, 29), BLACK);
        assert_eq!(*img.get_pixel(20, 21), BLACK);
        // nothing else changed
        let changed = img.pixels().filter(|p| **p != BLACK).count();
        let outline = 2 * 40 * 2 + 2 * 36 * 2;
        assert_eq!(changed, outline + 16 * 8);
    }

    #[test]
    fn boxes_are_clipped_to_the_picture() {
        let mut img = RgbImage::new(64, 48);
        draw_boxes(
            &mut img,
            &[
                (BBox::new(-20.0, -10.0, 30.0, 500.0), "no_mask"),
                (BBox::new(100.0, 100.0, 120.0, 120.0), "person"),
                (BBox::new(f32::NAN, 0.0, 10.0, 10.0), "person"),
                (BBox::new(63.5, 47.5, 64.0, 48.0), "mask"),
            ],
        );
        let red = label_colour("no_mask");
        // the clipped box's edges lie on the picture's border, and its right edge at x=29
        assert_eq!(*img.get_pixel(0, 20), red);
        assert_eq!(*img.get_pixel(29, 20), red);
        assert_eq!(*img.get_pixel(29, 47), red);
        assert_eq!(*img.get_pixel(15, 20), BLACK);
        assert_eq!(*img.get_pixel(40, 20), BLACK);
        // a one-pixel box in the corner is still marked
        assert_eq!(*img.get_pixel(63, 47), label_colour("mask"));
    }

    #[test]
    fn thickness_follows_the_picture_size() {
        assert_eq!(thickness(360), 2);
        assert_eq!(thickness(720), 3);
        assert_eq!(thickness(1080), 4);
        assert_eq!(thickness(2160), 4);
    }

    #[test]
    fn a_snapshot_in_a_missing_unwritable_place_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        let blocker = d.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let path = blocker.join("sub/x.jpg");
        let e = write_snapshot(&RgbImage::new(8, 8), &[], &path).unwrap_err();
        assert!(e.to_string().contains("x.jpg"), "{e}");
    }
}
