//! Post-processing of the person networks: their raw outputs to boxes in source pixels, and
//! per-class NMS. Pure functions over slices (unit-tested and benched without a model), so each
//! network family in `person` only says where its tensors are.

use super::Detection;
use crate::geometry::BBox;

/// The frame a preprocessed input came from: what postprocessing needs to map boxes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceSize {
    pub width: u32,
    pub height: u32,
}

/// One output level (stride) of the network, as read from the outputs.
#[derive(Clone, Copy, Debug)]
pub struct Level<'a> {
    pub stride: u32,
    pub grid_w: usize,
    pub grid_h: usize,
    /// `grid_w * grid_h` rows of `num_classes` probabilities.
    pub scores: &'a [f32],
    /// `grid_w * grid_h` rows of `4 * bins` logits: left, top, right, bottom distributions.
    pub boxes: &'a [f32],
}

/// Decoding parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeParams {
    pub num_classes: usize,
    /// Bins per side of the GFL distribution (11 for NanoDet-m: distances 0..10 strides).
    pub bins: usize,
    /// Minimum class probability.
    pub threshold: f32,
    /// COCO indices to keep (sorted); `[0]` = persons only.
    pub classes: Vec<u16>,
    /// Model input size and source size: boxes are scaled from the first to the second.
    pub input_w: u32,
    pub input_h: u32,
    pub source: SourceSize,
}

/// Candidates of one level above the threshold, boxes in source pixels (pure; unit-tested).
pub fn decode_level(level: &Level<'_>, p: &DecodeParams, out: &mut Vec<Detection>) {
    let cells = level.grid_w * level.grid_h;
    let per_box = 4 * p.bins;
    if level.scores.len() < cells * p.num_classes || level.boxes.len() < cells * per_box {
        return;
    }
    let sx = p.source.width as f32 / p.input_w as f32;
    let sy = p.source.height as f32 / p.input_h as f32;
    let stride = level.stride as f32;
    for cell in 0..cells {
        let row_scores = &level.scores[cell * p.num_classes..(cell + 1) * p.num_classes];
        // Usually nothing passes: test the scores before decoding the box.
        let mut any = false;
        for &c in &p.classes {
            if row_scores
                .get(c as usize)
                .is_some_and(|&s| s >= p.threshold)
            {
                any = true;
                break;
            }
        }
        if !any {
            continue;
        }
        let dist = &level.boxes[cell * per_box..(cell + 1) * per_box];
        let side = |k: usize| expected_bin(&dist[k * p.bins..(k + 1) * p.bins]) * stride;
        let (l, t, r, b) = (side(0), side(1), side(2), side(3));
        let cx = ((cell % level.grid_w) as f32 + 0.5) * stride;
        let cy = ((cell / level.grid_w) as f32 + 0.5) * stride;
        let bbox = BBox::new((cx - l) * sx, (cy - t) * sy, (cx + r) * sx, (cy + b) * sy)
            .clamp(p.source.width as f32, p.source.height as f32);
        for &c in &p.classes {
            let Some(&score) = row_scores.get(c as usize) else {
                continue;
            };
            if score >= p.threshold && bbox.area() > 0.0 {
                out.push(Detection {
                    bbox,
                    score,
                    class: c,
                });
            }
        }
    }
}

/// Expected value of a softmax over `logits`: sum(i * p_i).
fn expected_bin(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    let mut weighted = 0.0;
    for (i, &v) in logits.iter().enumerate() {
        let e = (v - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    if sum > 0.0 { weighted / sum } else { 0.0 }
}

/// Greedy non-maximum suppression per class; the result is sorted by score, highest first.
pub fn nms(dets: &mut Vec<Detection>, iou: f32) {
    let kept = suppress(dets, iou);
    dets.truncate(kept);
}

/// [`nms`] of a slice: the kept detections are moved to its front, best first; their number.
pub fn suppress(dets: &mut [Detection], iou: f32) -> usize {
    // (a stable sort of a few dozen candidates uses a scratch on the stack; the kept ones are
    // compacted in place: nothing allocated per frame)
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = 0;
    for i in 0..dets.len() {
        let d = dets[i];
        if dets[..kept]
            .iter()
            .all(|k| k.class != d.class || k.bbox.iou(&d.bbox) <= iou)
        {
            dets[kept] = d;
            kept += 1;
        }
    }
    kept
}

/// Candidates of an SSD whose boxes are already decoded (pure; unit-tested).
///
/// `boxes`: rows of (ymin, xmin, ymax, xmax) normalised to the input; `scores`: rows of
/// `columns` probabilities whose column 0 is the background, so class `c` is column `c + 1`.
pub fn decode_ssd(
    boxes: &[f32],
    scores: &[f32],
    columns: usize,
    p: &DecodeParams,
    out: &mut Vec<Detection>,
) {
    if columns < 2 {
        return;
    }
    let (w, h) = (p.source.width as f32, p.source.height as f32);
    let rows = (boxes.len() / 4).min(scores.len() / columns);
    for i in 0..rows {
        let row = &scores[i * columns..(i + 1) * columns];
        for &c in &p.classes {
            let Some(&score) = row.get(c as usize + 1) else {
                continue;
            };
            if score < p.threshold {
                continue;
            }
            let b = &boxes[i * 4..i * 4 + 4];
            let bbox = BBox::new(b[1] * w, b[0] * h, b[3] * w, b[2] * h).clamp(w, h);
            if bbox.area() > 0.0 {
                out.push(Detection {
                    bbox,
                    score,
                    class: c,
                });
            }
        }
    }
}

/// Rows of a CenterNet graph's final detections: x1, y1, x2, y2 in input pixels, score, class
/// (pure; unit-tested).
pub fn decode_centernet(rows: &[f32], p: &DecodeParams, out: &mut Vec<Detection>) {
    let sx = p.source.width as f32 / p.input_w as f32;
    let sy = p.source.height as f32 / p.input_h as f32;
    for r in rows.chunks_exact(6) {
        let (score, class) = (r[4], r[5]);
        // The class column is a float holding an index; anything else is not a class.
        if score < p.threshold || !(class >= 0.0 && class.fract() == 0.0) {
            continue;
        }
        let class = class as u16;
        if p.classes.binary_search(&class).is_err() {
            continue;
        }
        let bbox = BBox::new(r[0] * sx, r[1] * sy, r[2] * sx, r[3] * sy)
            .clamp(p.source.width as f32, p.source.height as f32);
        if bbox.area() > 0.0 {
            out.push(Detection { bbox, score, class });
        }
    }
}

/// Values per person in MoveNet MultiPose's output: 17 keypoints x (y, x, score), then the box
/// (ymin, xmin, ymax, xmax, normalised) and the person score.
pub const MOVENET_ROW: usize = 56;

/// Persons of MoveNet MultiPose's output rows (pure; unit-tested). Its only class is person (0).
pub fn decode_movenet(rows: &[f32], p: &DecodeParams, out: &mut Vec<Detection>) {
    if !p.classes.contains(&super::PERSON) {
        return;
    }
    let (w, h) = (p.source.width as f32, p.source.height as f32);
    for r in rows.chunks_exact(MOVENET_ROW) {
        let score = r[55];
        if score < p.threshold {
            continue;
        }
        let bbox = BBox::new(r[52] * w, r[51] * h, r[54] * w, r[53] * h).clamp(w, h);
        if bbox.area() > 0.0 {
            out.push(Detection {
                bbox,
                score,
                class: super::PERSON,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(classes: Vec<u16>) -> DecodeParams {
        DecodeParams {
            num_classes: 3,
            bins: 11,
            threshold: 0.4,
            classes,
            input_w: 32,
            input_h: 32,
            source: SourceSize {
                width: 64,
                height: 32,
            },
        }
    }

    /// A distribution whose softmax puts (almost) all mass on bin `k`.
    fn peaked(k: usize) -> [f32; 11] {
        let mut d = [-20.0; 11];
        d[k] = 20.0;
        d
    }

    #[test]
    fn expected_bin_is_softmax_mean() {
        assert!((expected_bin(&peaked(3)) - 3.0).abs() < 1e-4);
        // uniform over 0..=10 -> 5
        assert!((expected_bin(&[0.0; 11]) - 5.0).abs() < 1e-5);
        // two equal peaks at 2 and 4 -> 3
        let mut d = [-30.0; 11];
        d[2] = 5.0;
        d[4] = 5.0;
        assert!((expected_bin(&d) - 3.0).abs() < 1e-4);
    }

    #[test]
    fn decodes_centre_distances_and_scales_to_source() {
        // 4x4 grid at stride 8 on a 32x32 input; one confident person in cell (col 1, row 2).
        let cells = 16;
        let mut scores = vec![0.0f32; cells * 3];
        let mut boxes = vec![0.0f32; cells * 44];
        let cell = 2 * 4 + 1;
        scores[cell * 3] = 0.9;
        for (k, bin) in [1usize, 2, 1, 0].into_iter().enumerate() {
            boxes[cell * 44 + k * 11..cell * 44 + (k + 1) * 11].copy_from_slice(&peaked(bin));
        }
        let level = Level {
            stride: 8,
            grid_w: 4,
            grid_h: 4,
            scores: &scores,
            boxes: &boxes,
        };
        let mut out = Vec::new();
        decode_level(&level, &params(vec![0]), &mut out);
        assert_eq!(out.len(), 1);
        let d = out[0];
        // centre (12, 20) in input pixels; l=8, t=16, r=8, b=0; x doubled to source (64 wide)
        let want = BBox::new(8.0, 4.0, 40.0, 20.0);
        for (a, b) in d.bbox.to_array().iter().zip(want.to_array()) {
            assert!((a - b).abs() < 1e-3, "{:?} vs {want:?}", d.bbox);
        }
        assert_eq!((d.class, d.score), (0, 0.9));
    }

    #[test]
    fn threshold_and_class_filter() {
        let cells = 16;
        let mut scores = vec![0.0f32; cells * 3];
        let mut boxes = vec![0.0f32; cells * 44];
        for c in 0..cells {
            for k in 0..4 {
                boxes[c * 44 + k * 11..c * 44 + (k + 1) * 11].copy_from_slice(&peaked(1));
            }
        }
        scores[0] = 0.39; // person below threshold
        scores[3 + 2] = 0.8; // class 2 ("car") in cell 1
        scores[6] = 0.4; // person exactly at threshold in cell 2
        let level = Level {
            stride: 8,
            grid_w: 4,
            grid_h: 4,
            scores: &scores,
            boxes: &boxes,
        };
        let mut persons = Vec::new();
        decode_level(&level, &params(vec![0]), &mut persons);
        assert_eq!(persons.len(), 1);
        assert_eq!(persons[0].score, 0.4);
        let mut both = Vec::new();
        decode_level(&level, &params(vec![0, 2]), &mut both);
        assert_eq!(both.iter().map(|d| d.class).collect::<Vec<_>>(), vec![2, 0]);
    }

    #[test]
    fn short_outputs_decode_nothing() {
        let level = Level {
            stride: 8,
            grid_w: 4,
            grid_h: 4,
            scores: &[1.0; 10],
            boxes: &[0.0; 10],
        };
        let mut out = Vec::new();
        decode_level(&level, &params(vec![0]), &mut out);
        assert!(out.is_empty());
    }

    fn det(x: f32, score: f32, class: u16) -> Detection {
        Detection {
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            score,
            class,
        }
    }

    #[test]
    fn nms_keeps_best_of_overlaps_per_class() {
        let mut d = vec![
            det(0.0, 0.5, 0),
            det(1.0, 0.9, 0), // overlaps the first (IoU 9/11 = 0.82): first is dropped
            det(20.0, 0.6, 0), // apart
            det(1.0, 0.7, 2), // same place, other class: kept
            det(5.0, 0.8, 0), // IoU with 0.9 one: 6/14 = 0.43 <= 0.45: kept
        ];
        nms(&mut d, 0.45);
        let got: Vec<(f32, u16)> = d.iter().map(|d| (d.score, d.class)).collect();
        assert_eq!(got, vec![(0.9, 0), (0.8, 0), (0.7, 2), (0.6, 0)]);
    }

    #[test]
    fn ssd_boxes_are_yxyx_normalised_and_skip_the_background_column() {
        // two anchors, columns (background, person); the second anchor is a person at 0.9
        let boxes = [0.0, 0.0, 0.1, 0.1, 0.25, 0.5, 0.75, 1.0];
        let scores = [0.1, 0.2, 0.05, 0.9];
        let mut p = params(vec![0]);
        p.num_classes = 1;
        let mut out = Vec::new();
        decode_ssd(&boxes, &scores, 2, &p, &mut out);
        assert_eq!(out.len(), 1);
        // source 64x32: x = 0.5*64 .. 1.0*64, y = 0.25*32 .. 0.75*32
        assert_eq!(out[0].bbox, BBox::new(32.0, 8.0, 64.0, 24.0));
        assert_eq!((out[0].class, out[0].score), (0, 0.9));
        // a background-only row never becomes a detection, whatever its background score
        let mut none = Vec::new();
        decode_ssd(&[0.0, 0.0, 1.0, 1.0], &[0.99, 0.0], 2, &p, &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn centernet_rows_scale_from_input_pixels_and_filter_classes() {
        // input 32x32, source 64x32: x doubles
        let rows = [
            4.0, 2.0, 8.0, 30.0, 0.8, 0.0, // person
            0.0, 0.0, 4.0, 4.0, 0.9, 2.0, // class 2, not asked for
            1.0, 1.0, 2.0, 2.0, 0.3, 0.0, // below threshold
        ];
        let mut out = Vec::new();
        decode_centernet(&rows, &params(vec![0]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(8.0, 2.0, 16.0, 30.0));
        let mut both = Vec::new();
        decode_centernet(&rows, &params(vec![0, 2]), &mut both);
        assert_eq!(both.iter().map(|d| d.class).collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn movenet_box_follows_the_keypoints() {
        let mut row = [0.0f32; MOVENET_ROW];
        row[51..56].copy_from_slice(&[0.25, 0.5, 0.75, 1.0, 0.6]);
        let mut two = row.to_vec();
        let mut weak = row;
        weak[55] = 0.1;
        two.extend_from_slice(&weak);
        let mut out = Vec::new();
        decode_movenet(&two, &params(vec![0]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(32.0, 8.0, 64.0, 24.0));
        assert_eq!(out[0].class, 0);
    }
}
