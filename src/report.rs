//! The counting report (`ronda analyze VIDEO --line ... --report DIR`): one small picture of each
//! person at the moment their crossing counted, a contact sheet of them all, and a page that
//! lists them, so an admin can check a line's counts by eye before trusting it.
//!
//! Written into DIR: `crossing-NNN.jpg` (one per crossing, in the order of the analysis'
//! `crossings`), `sheet.jpg` (all of them in rows of [`PER_ROW`], each cell framed in the colour of
//! its direction: green `in`, orange `out`), `index.html` (a table: number, line, direction,
//! time, track, picture) and `analysis.json` (the `--json` result). Files of an earlier report in
//! DIR are overwritten; nothing else there is touched.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage, imageops};

use crate::analyze::{Analysis, CrossingCrop};
use crate::rules::Direction;

/// Height of a crop on the sheet and on disk (pixels): enough to tell people apart.
const CELL_H: u32 = 160;
/// Width of a cell on the sheet.
const CELL_W: u32 = 100;
/// Cells per row of the sheet.
pub const PER_ROW: u32 = 8;
/// Frame around each cell, in the colour of its direction.
const BORDER: u32 = 4;

const IN_COLOUR: Rgb<u8> = Rgb([40, 170, 60]);
const OUT_COLOUR: Rgb<u8> = Rgb([240, 140, 20]);

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {source}")]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The crop scaled to the cell height (width follows, at most the cell width).
fn cell(image: &RgbImage) -> RgbImage {
    let (w, h) = (image.width().max(1), image.height().max(1));
    let scale = (CELL_H as f32 / h as f32).min(CELL_W as f32 / w as f32);
    let (nw, nh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    imageops::resize(image, nw, nh, imageops::FilterType::Triangle)
}

/// The contact sheet of these crops with their directions.
pub fn sheet(cells: &[(Direction, &RgbImage)]) -> RgbImage {
    let n = cells.len().max(1) as u32;
    let cols = n.min(PER_ROW);
    let rows = n.div_ceil(PER_ROW);
    let (cw, ch) = (CELL_W + 2 * BORDER, CELL_H + 2 * BORDER);
    let mut out = RgbImage::from_pixel(cols * cw, rows * ch, Rgb([255, 255, 255]));
    for (i, (dir, img)) in cells.iter().enumerate() {
        let (col, row) = (i as u32 % PER_ROW, i as u32 / PER_ROW);
        let (x0, y0) = (col * cw, row * ch);
        let colour = match dir {
            Direction::In => IN_COLOUR,
            Direction::Out => OUT_COLOUR,
        };
        for y in y0..y0 + ch {
            for x in x0..x0 + cw {
                out.put_pixel(x, y, colour);
            }
        }
        let c = cell(img);
        let (ox, oy) = (
            x0 + BORDER + (CELL_W - c.width().min(CELL_W)) / 2,
            y0 + BORDER + (CELL_H - c.height().min(CELL_H)) / 2,
        );
        imageops::replace(&mut out, &c, ox as i64, oy as i64);
    }
    out
}

fn save_jpeg(img: &RgbImage, path: &Path) -> Result<(), ReportError> {
    let bytes = crate::sinks::snapshot::encode_jpeg(img).map_err(|source| ReportError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, bytes).map_err(io(path))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Write the report of `analysis` into `dir` (made if missing); returns the page's path.
pub fn write(
    dir: &Path,
    analysis: &Analysis,
    crops: &[CrossingCrop],
) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut cells = Vec::with_capacity(crops.len());
    for c in crops {
        let Some(x) = analysis.crossings.get(c.crossing) else {
            continue;
        };
        let path = dir.join(format!("crossing-{:03}.jpg", c.crossing + 1));
        save_jpeg(&cell(&c.image), &path)?;
        cells.push((x.direction, &c.image));
    }
    let sheet_path = dir.join("sheet.jpg");
    save_jpeg(&sheet(&cells), &sheet_path)?;
    let json_path = dir.join("analysis.json");
    let json = serde_json::to_string_pretty(analysis).unwrap_or_default();
    std::fs::write(&json_path, json).map_err(io(&json_path))?;

    let page = dir.join("index.html");
    let mut html = String::new();
    html.push_str("<!doctype html><meta charset=\"utf-8\"><title>ronda: counting report</title>\n");
    html.push_str("<style>body{font-family:sans-serif}td,th{padding:4px 8px;text-align:left}.in{color:#1a7a2e}.out{color:#b86400}</style>\n");
    html.push_str(&format!(
        "<h1>Counting report</h1><p>{} &middot; {} frames, {} analysed</p>\n<table><tr><th>line</th><th>in</th><th>out</th></tr>\n",
        escape(&analysis.video),
        analysis.frames,
        analysis.analysed
    ));
    for (name, c) in &analysis.lines {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(name),
            c.in_,
            c.out
        ));
    }
    html.push_str("</table>\n<p><img src=\"sheet.jpg\" alt=\"all crossings\"></p>\n");
    html.push_str("<table><tr><th>#</th><th>line</th><th>direction</th><th>time</th><th>frame</th><th>track</th><th>mask</th><th>person</th></tr>\n");
    for (i, x) in analysis.crossings.iter().enumerate() {
        let dir = x.direction.as_str();
        let mask = x.mask.map(|m| m.as_str()).unwrap_or("");
        html.push_str(&format!(
            "<tr><td>{n}</td><td>{line}</td><td class=\"{dir}\">{dir}</td><td>{t:.2} s</td><td>{f}</td><td>{id}</td><td>{mask}</td><td><img src=\"crossing-{n:03}.jpg\" alt=\"crossing {n}\"></td></tr>\n",
            n = i + 1,
            line = escape(&x.line),
            t = x.time_s,
            f = x.frame,
            id = x.track_id,
        ));
    }
    html.push_str("</table>\n");
    let mut f = std::fs::File::create(&page).map_err(io(&page))?;
    f.write_all(html.as_bytes()).map_err(io(&page))?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sheet_has_one_framed_cell_per_crossing_in_rows() {
        let a = RgbImage::from_pixel(30, 90, Rgb([10, 10, 10]));
        let cells: Vec<_> = (0..10)
            .map(|i| {
                (
                    if i % 2 == 0 {
                        Direction::In
                    } else {
                        Direction::Out
                    },
                    &a,
                )
            })
            .collect();
        let s = sheet(&cells);
        let (cw, ch) = (CELL_W + 2 * BORDER, CELL_H + 2 * BORDER);
        assert_eq!((s.width(), s.height()), (PER_ROW * cw, 2 * ch));
        // frames in the direction's colour, the person in the middle of each cell
        assert_eq!(*s.get_pixel(0, 0), IN_COLOUR);
        assert_eq!(*s.get_pixel(cw, 0), OUT_COLOUR);
        assert_eq!(*s.get_pixel(cw / 2, ch / 2), Rgb([10, 10, 10]));
        // the 9th crossing starts the second row
        assert_eq!(*s.get_pixel(0, ch), IN_COLOUR);
    }

    #[test]
    fn names_are_escaped_in_the_page() {
        assert_eq!(escape("<b>\"x\"&"), "&lt;b&gt;&quot;x&quot;&amp;");
    }
}
