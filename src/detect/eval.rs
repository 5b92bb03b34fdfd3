//! Person-detector evaluation against ground-truth boxes (issue 13; `ronda eval-detector`).
//!
//! Pure parts, unit-tested: MOTChallenge `gt.txt` parsing, greedy matching of detections to
//! ground truth, average precision, the "crowded" ground truth (people whose box overlaps
//! another's), and the synthetic night picture. The command around it decodes the clips,
//! runs each model and times it.
//!
//! Matching follows COCO: detections in falling score order, each takes the unmatched
//! ground-truth box it overlaps most if IoU >= 0.5, otherwise it is a false positive. AP is the
//! area under the precision envelope (all-point interpolation, PASCAL VOC 2010+). Because the
//! greedy order is by score, the matches of the detections above any threshold are the same as
//! if only those had been matched: one run at a low threshold gives both the AP and the figures
//! at the model's operating threshold.

use super::Detection;
use crate::geometry::BBox;
use image::RgbImage;
use std::collections::BTreeMap;

/// IoU from which a detection counts as finding a ground-truth person.
pub const MATCH_IOU: f32 = 0.5;
/// A ground-truth person is "crowded" when its box overlaps another's by more than this.
pub const CROWDED_IOU: f32 = 0.3;

/// Ground truth of one clip: 1-based frame number -> annotated people (id, box in source pixels).
pub type GroundTruthPeople = BTreeMap<u32, Vec<(u32, BBox)>>;

/// Parse MOTChallenge `gt.txt`: `frame,id,x,y,w,h,flag,...`. Rows whose flag (7th column) is 0
/// are "ignore" rows in MOT16+ files and are skipped; MOT15 files such as TUD's have 1 or -1.
pub fn parse_gt_people(text: &str) -> Result<GroundTruthPeople, String> {
    let mut gt = GroundTruthPeople::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || format!("line {}: expected frame,id,x,y,w,h,... numbers", n + 1);
        if f.len() < 6 {
            return Err(bad());
        }
        let frame: u32 = f[0].parse().map_err(|_| bad())?;
        let id: u32 = f[1].parse::<f32>().map_err(|_| bad())? as u32;
        let mut v = [0f32; 4];
        for (k, x) in v.iter_mut().enumerate() {
            *x = f[2 + k].parse().map_err(|_| bad())?;
        }
        if f.get(6).and_then(|s| s.parse::<f32>().ok()) == Some(0.0) {
            continue;
        }
        if frame == 0 || v[2] <= 0.0 || v[3] <= 0.0 {
            return Err(format!("line {}: frame 0 or an empty box", n + 1));
        }
        gt.entry(frame)
            .or_default()
            .push((id, BBox::new(v[0], v[1], v[0] + v[2], v[1] + v[3])));
    }
    Ok(gt)
}

/// For each ground-truth box: does it overlap another by IoU > [`CROWDED_IOU`]?
pub fn crowded(gt: &[BBox]) -> Vec<bool> {
    (0..gt.len())
        .map(|i| (0..gt.len()).any(|j| j != i && gt[i].iou(&gt[j]) > CROWDED_IOU))
        .collect()
}

/// Greedy matching of one frame. `dets` in any order; the result is in falling score order:
/// (score, index of the ground-truth box found, or None for a false positive).
fn match_frame(dets: &[Detection], gt: &[BBox]) -> Vec<(f32, Option<usize>)> {
    let mut order: Vec<&Detection> = dets.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut taken = vec![false; gt.len()];
    order
        .into_iter()
        .map(|d| {
            let best = gt
                .iter()
                .enumerate()
                .filter(|(j, _)| !taken[*j])
                .map(|(j, g)| (j, d.bbox.iou(g)))
                .filter(|(_, iou)| *iou >= MATCH_IOU)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(j, _)| j);
            if let Some(j) = best {
                taken[j] = true;
            }
            (d.score, best)
        })
        .collect()
}

/// Average precision of scored detections (true = matched) against `n_gt` ground-truth boxes:
/// the area under the precision envelope over recall (all-point interpolation).
fn average_precision(scored: &[(f32, bool)], n_gt: usize) -> f64 {
    if n_gt == 0 {
        return 0.0;
    }
    let mut s: Vec<(f32, bool)> = scored.to_vec();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    // (recall, precision) after each detection
    let mut points = Vec::with_capacity(s.len());
    let (mut tp, mut fp) = (0usize, 0usize);
    for (_, hit) in &s {
        if *hit {
            tp += 1;
        } else {
            fp += 1;
        }
        points.push((tp as f64 / n_gt as f64, tp as f64 / (tp + fp) as f64));
    }
    // Envelope: precision at recall r is the best precision at any recall >= r.
    let mut best = 0.0f64;
    for p in points.iter_mut().rev() {
        best = best.max(p.1);
        p.1 = best;
    }
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (r, p) in points {
        if r > prev_recall {
            ap += (r - prev_recall) * p;
            prev_recall = r;
        }
    }
    ap
}

/// Everything counted for one model on one set of frames.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Every detection (any score the detector gave): score and whether it found a person.
    pub scored: Vec<(f32, bool)>,
    pub ground_truth: usize,
    /// At the operating threshold: persons found, detections made.
    pub found: usize,
    pub detections: usize,
    /// Crowded ground-truth persons, and how many of them were found at the threshold.
    pub crowded: usize,
    pub crowded_found: usize,
}

impl Tally {
    /// Add one frame's detections (any threshold at or below `threshold`).
    pub fn add_frame(&mut self, dets: &[Detection], gt: &[BBox], threshold: f32) {
        let crowd = crowded(gt);
        self.ground_truth += gt.len();
        self.crowded += crowd.iter().filter(|c| **c).count();
        for (score, hit) in match_frame(dets, gt) {
            self.scored.push((score, hit.is_some()));
            if score >= threshold {
                self.detections += 1;
                if let Some(j) = hit {
                    self.found += 1;
                    if crowd[j] {
                        self.crowded_found += 1;
                    }
                }
            }
        }
    }

    pub fn ap(&self) -> f64 {
        average_precision(&self.scored, self.ground_truth)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.found, self.ground_truth)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.found, self.detections)
    }

    pub fn crowded_recall(&self) -> f64 {
        ratio(self.crowded_found, self.crowded)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// How a day picture is turned into a night one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Night {
    /// Factor on every channel (so on luma): 0.15 leaves about the light of a street lamp.
    pub level: f32,
    /// Standard deviation of the sensor noise added to luma, in 0-255 steps (after darkening:
    /// a camera at night amplifies its noise along with the little light it gets).
    pub noise: f32,
    pub seed: u64,
}

impl Default for Night {
    fn default() -> Self {
        Self {
            level: 0.15,
            noise: 3.0,
            seed: 13,
        }
    }
}

/// A darkened, noisy copy of `img`. The same noise is added to R, G and B (luma noise), from a
/// seeded generator of our own so every run and machine sees the same night pictures.
pub fn darken(img: &RgbImage, night: &Night, frame: u64) -> RgbImage {
    let mut out = img.clone();
    let mut rng = SplitMix64(night.seed ^ frame.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for px in out.pixels_mut() {
        let n = rng.gaussian() * night.noise;
        for c in px.0.iter_mut() {
            *c = (*c as f32 * night.level + n).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// SplitMix64: tiny, fast, and fixed (a crate's generator may change between versions).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn gaussian(&mut self) -> f32 {
        let (u1, u2) = (self.unit(), self.unit());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox::new(x, 0.0, x + 10.0, 20.0),
            score,
            class: 0,
        }
    }

    fn gt_at(xs: &[f32]) -> Vec<BBox> {
        xs.iter()
            .map(|&x| BBox::new(x, 0.0, x + 10.0, 20.0))
            .collect()
    }

    #[test]
    fn ap_of_a_hand_made_ranking() {
        // 4 ground-truth persons; ranked detections: hit, miss, hit, hit, miss.
        // (recall, precision): (.25, 1), (.25, .5), (.5, .67), (.75, .75), (.75, .6)
        // envelope: 1 up to .25, then .75 up to .75  ->  AP = .25 * 1 + .5 * .75 = 0.625
        let scored = [
            (0.9, true),
            (0.8, false),
            (0.7, true),
            (0.6, true),
            (0.5, false),
        ];
        assert!((average_precision(&scored, 4) - 0.625).abs() < 1e-9);
        // order of the input does not matter, only the scores
        let mut shuffled = scored;
        shuffled.reverse();
        assert!((average_precision(&shuffled, 4) - 0.625).abs() < 1e-9);
        // perfect ranking, everything found -> 1; nothing found -> 0
        assert_eq!(average_precision(&[(0.9, true), (0.1, true)], 2), 1.0);
        assert_eq!(average_precision(&[(0.9, false)], 2), 0.0);
        assert_eq!(average_precision(&[], 0), 0.0);
    }

    #[test]
    fn matching_is_greedy_by_score_and_one_to_one() {
        let gt = gt_at(&[0.0, 100.0]);
        // two boxes on the first person: the better scored one takes it, the other is a false
        // positive even though it overlaps; a box far from everyone is a false positive.
        let dets = [
            det(1.0, 0.6),
            det(0.0, 0.9),
            det(50.0, 0.8),
            det(101.0, 0.7),
        ];
        let m = match_frame(&dets, &gt);
        assert_eq!(
            m,
            vec![(0.9, Some(0)), (0.8, None), (0.7, Some(1)), (0.6, None)]
        );
        // IoU below 0.5 is a miss: shifted by 5 of 10 px wide -> IoU 1/3
        assert_eq!(match_frame(&[det(5.0, 0.9)], &gt), vec![(0.9, None)]);
    }

    #[test]
    fn tally_counts_at_the_threshold_and_crowded_persons() {
        // persons at 0 and 4 overlap (IoU 6/14 = 0.43 > 0.3): both crowded; the one at 100 not.
        let gt = gt_at(&[0.0, 4.0, 100.0]);
        assert_eq!(crowded(&gt), vec![true, true, false]);
        let dets = [
            det(0.0, 0.9),
            det(4.0, 0.3),
            det(100.0, 0.5),
            det(200.0, 0.45),
        ];
        let mut t = Tally::default();
        t.add_frame(&dets, &gt, 0.4);
        assert_eq!((t.ground_truth, t.crowded), (3, 2));
        // at 0.4: three detections, two hits (one crowded); the 0.3 one counts for AP only
        assert_eq!((t.detections, t.found, t.crowded_found), (3, 2, 1));
        assert!((t.recall() - 2.0 / 3.0).abs() < 1e-9);
        assert!((t.precision() - 2.0 / 3.0).abs() < 1e-9);
        assert!((t.crowded_recall() - 0.5).abs() < 1e-9);
        // ranking: hit .9, hit .5, miss .45, hit .3 -> (1/3,1) (2/3,1) (2/3,.67) (1,.75)
        // AP = 2/3 * 1 + 1/3 * .75
        assert!((t.ap() - (2.0 / 3.0 + 0.25)).abs() < 1e-9);
    }

    #[test]
    fn parses_mot_ground_truth() {
        let text = "1,1,88,99,61.5,218,1,4.4,5.5,0\n1,2,10,20,30,40,-1,-1,-1,-1\n\n3,1,0,0,5,5,0,0,0,0\n2,1,1,2,3,4,1\n";
        let gt = parse_gt_people(text).unwrap();
        assert_eq!(gt.len(), 2, "frame 3's only row is an ignore row");
        assert_eq!(gt[&1][0], (1, BBox::new(88.0, 99.0, 149.5, 317.0)));
        assert_eq!(gt[&1].len(), 2);
        assert_eq!(gt[&2], vec![(1, BBox::new(1.0, 2.0, 4.0, 6.0))]);
        assert!(
            parse_gt_people("1,1,a,2,3,4")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(parse_gt_people("1,1,2,3").is_err());
    }

    #[test]
    fn night_is_dark_noisy_and_repeatable() {
        let img = RgbImage::from_pixel(64, 48, image::Rgb([200, 100, 40]));
        let night = Night::default();
        let a = darken(&img, &night, 7);
        assert_eq!(a, darken(&img, &night, 7), "same frame, same picture");
        assert_ne!(a, darken(&img, &night, 8), "noise differs between frames");
        let mean = |c: usize| a.pixels().map(|p| p.0[c] as f64).sum::<f64>() / (64.0 * 48.0);
        assert!((mean(0) - 30.0).abs() < 1.0, "{}", mean(0));
        assert!((mean(1) - 15.0).abs() < 1.0, "{}", mean(1));
        assert!((mean(2) - 6.0).abs() < 1.0, "{}", mean(2));
        // the noise is luma noise: the channel differences stay those of the darkened colour
        // (up to rounding), except where clamping at 0 cut the noise off
        let p = a.get_pixel(10, 10).0;
        assert!(((p[0] as i32 - p[1] as i32) - 15).abs() <= 1, "{p:?}");
        let sd = (a
            .pixels()
            .map(|p| (p.0[0] as f64 - mean(0)).powi(2))
            .sum::<f64>()
            / (64.0 * 48.0))
            .sqrt();
        assert!((sd - 3.0).abs() < 0.5, "noise sd {sd}");
    }
}
