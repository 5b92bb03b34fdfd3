//! "Preview this line": what a line would have counted on a camera over the last minutes, so an
//! admin can check a line drawn in the editor against real passers-by before saving it.
//!
//! The camera's chain records what its tracker reported each analysed frame ([`Recent`]), and a
//! small picture of each person followed, at most one per [`LOOK_EVERY`] seconds of the stream.
//! A preview replays those tracks through a fresh [`LineCounter`] with the proposed line: the very
//! logic and tracks the live count uses, so a saved line counts what its preview showed (people
//! already in view when the record starts are taken from where they are first seen, as after a
//! restart).
//!
//! Memory is bounded by stream time (`keep`), by frames and by picture bytes: the oldest go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::rules::{CountingParams, Counts, Crossing, LineCounter, LineSpec, Moment, Tick};
use crate::track::Track;

/// A person's picture is kept at most this often (seconds of the stream): a crossing's picture
/// is then at most half of that away from the moment it counted.
pub const LOOK_EVERY: f64 = 1.0;

/// How much of a camera's recent past is kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecentLimits {
    /// Seconds of the stream.
    pub keep: f64,
    /// Analysed frames (a camera analysed faster than configured cannot grow the record).
    pub max_frames: usize,
    /// Bytes of pictures.
    pub max_look_bytes: usize,
}

impl Default for RecentLimits {
    fn default() -> Self {
        Self {
            keep: 300.0,
            // 5 minutes at 10 frames a second
            max_frames: 3000,
            // about 1500 small pictures
            max_look_bytes: 4 << 20,
        }
    }
}

struct Frame {
    tick: Tick,
    utc: DateTime<Utc>,
    tracks: Vec<Track>,
}

struct Look {
    track_id: u64,
    t: f64,
    jpeg: Arc<[u8]>,
}

/// A camera's recent tracks and pictures of the people in them.
pub struct Recent {
    limits: RecentLimits,
    frames: VecDeque<Frame>,
    looks: VecDeque<Look>,
    look_bytes: usize,
    /// When each person's last picture was taken (stream seconds).
    last_look: HashMap<u64, f64>,
}

/// One crossing the previewed line would have counted.
#[derive(Clone, Debug)]
pub struct PreviewCrossing {
    pub crossing: Crossing,
    /// Wall-clock time of the frame it counted at.
    pub utc: DateTime<Utc>,
    /// The person's picture taken nearest to that moment, JPEG.
    pub picture: Option<Arc<[u8]>>,
}

/// What one line would have counted.
#[derive(Clone, Debug)]
pub struct LinePreview {
    pub line: String,
    pub counts: Counts,
    pub crossings: Vec<PreviewCrossing>,
}

/// The preview of a camera's lines over its recorded past.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The recorded span: first and last analysed frame.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Stream seconds between them.
    pub seconds: f64,
    pub frames: usize,
    pub lines: Vec<LinePreview>,
}

impl Recent {
    pub fn new(limits: RecentLimits) -> Self {
        Self {
            limits,
            frames: VecDeque::new(),
            looks: VecDeque::new(),
            look_bytes: 0,
            last_look: HashMap::new(),
        }
    }

    /// Record a frame's tracks (as the chain's tracker reported them).
    pub fn record(&mut self, at: &Moment, tracks: &[Track]) {
        let oldest = at.t - self.limits.keep;
        // room first, so that the track list of a frame that goes is reused for this one (no
        // allocation per frame once the window is full)
        let mut reuse = Vec::new();
        while self.frames.front().is_some_and(|f| {
            f.tick.t < oldest || self.frames.len() >= self.limits.max_frames.max(1)
        }) {
            if let Some(f) = self.frames.pop_front() {
                reuse = f.tracks;
            }
        }
        reuse.clear();
        reuse.extend_from_slice(tracks);
        self.frames.push_back(Frame {
            tick: Tick::new(at.frame, at.t),
            utc: at.utc,
            tracks: reuse,
        });
        while self.looks.front().is_some_and(|l| l.t < oldest) {
            self.drop_oldest_look();
        }
        self.last_look.retain(|_, t| *t >= oldest);
    }

    /// The people in this frame whose picture is due: seen in it (not coasting) and not pictured
    /// for [`LOOK_EVERY`] seconds.
    pub fn pictures_due<'a>(
        &'a self,
        at: &Moment,
        tracks: &'a [Track],
    ) -> impl Iterator<Item = &'a Track> {
        let t = at.t;
        tracks.iter().filter(move |k| {
            k.misses == 0
                && self
                    .last_look
                    .get(&k.id)
                    .is_none_or(|&last| t - last >= LOOK_EVERY - 1e-6)
        })
    }

    /// Keep a picture of person `track_id` taken at stream time `t`.
    pub fn add_picture(&mut self, track_id: u64, t: f64, jpeg: Vec<u8>) {
        self.last_look.insert(track_id, t);
        self.look_bytes += jpeg.len();
        self.looks.push_back(Look {
            track_id,
            t,
            jpeg: jpeg.into(),
        });
        while self.look_bytes > self.limits.max_look_bytes && !self.looks.is_empty() {
            self.drop_oldest_look();
        }
    }

    fn drop_oldest_look(&mut self) {
        if let Some(l) = self.looks.pop_front() {
            self.look_bytes -= l.jpeg.len();
        }
    }

    /// Frames recorded now.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Bytes of pictures kept now.
    pub fn picture_bytes(&self) -> usize {
        self.look_bytes
    }

    /// What `lines` would have counted over the recorded frames, with `params`.
    pub fn preview(&self, lines: &[LineSpec], params: &CountingParams) -> Preview {
        let mut out = Vec::new();
        let previews = lines
            .iter()
            .map(|spec| {
                let mut counter = LineCounter::new(spec.clone(), params.clone());
                let mut crossings = Vec::new();
                for f in &self.frames {
                    out.clear();
                    counter.update(f.tick, &f.tracks, &mut out);
                    crossings.extend(out.iter().map(|&c| PreviewCrossing {
                        crossing: c,
                        utc: f.utc,
                        picture: self.picture_of(c.track_id, c.time),
                    }));
                }
                LinePreview {
                    line: spec.name.clone(),
                    counts: counter.counts(),
                    crossings,
                }
            })
            .collect();
        let (first, last) = (self.frames.front(), self.frames.back());
        Preview {
            from: first.map(|f| f.utc),
            to: last.map(|f| f.utc),
            seconds: match (first, last) {
                (Some(a), Some(b)) => b.tick.t - a.tick.t,
                _ => 0.0,
            },
            frames: self.frames.len(),
            lines: previews,
        }
    }

    /// The picture of `track_id` nearest to stream time `t`.
    fn picture_of(&self, track_id: u64, t: f64) -> Option<Arc<[u8]>> {
        self.looks
            .iter()
            .filter(|l| l.track_id == track_id)
            .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()))
            .map(|l| l.jpeg.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BBox, Point};
    use crate::rules::Direction;
    use chrono::NaiveTime;

    fn moment(frame: u64, t: f64) -> Moment {
        Moment {
            frame,
            t,
            utc: DateTime::from_timestamp(1_800_000_000 + t as i64, 0).unwrap(),
            local: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        }
    }

    fn walker(id: u64, x: f32, frame: u32) -> Track {
        Track {
            id,
            bbox: BBox::new(x - 20.0, 100.0, x + 20.0, 200.0),
            score: 0.8,
            hits: frame + 1,
            age: frame,
            misses: 0,
            confirmed: frame >= 2,
            moved: true,
            best_score: 0.8,
        }
    }

    /// Person 1 walks left to right across x = 300 over 4 s at 5 frames a second.
    fn walk(recent: &mut Recent, live: &mut LineCounter, live_out: &mut Vec<Crossing>) {
        for i in 0..20u32 {
            let at = moment(i as u64, i as f64 / 5.0);
            let tracks = [walker(1, 100.0 + 20.0 * i as f32, i)];
            recent.record(&at, &tracks);
            for k in recent
                .pictures_due(&at, &tracks)
                .map(|k| k.id)
                .collect::<Vec<_>>()
            {
                recent.add_picture(k, at.t, vec![i as u8; 100]);
            }
            live.update(Tick::new(at.frame, at.t), &tracks, live_out);
        }
    }

    fn line() -> LineSpec {
        LineSpec::new("gate", Point::new(300.0, 0.0), Point::new(300.0, 400.0))
    }

    #[test]
    fn a_preview_counts_what_the_live_line_counted_with_a_picture_near_the_moment() {
        let mut recent = Recent::new(RecentLimits::default());
        let mut live = LineCounter::new(line(), CountingParams::default());
        let mut live_out = Vec::new();
        walk(&mut recent, &mut live, &mut live_out);
        assert_eq!(live_out.len(), 1);
        let p = recent.preview(&[line()], &CountingParams::default());
        assert_eq!(p.frames, 20);
        assert!((p.seconds - 3.8).abs() < 1e-9);
        assert_eq!(p.lines[0].counts, live.counts());
        assert_eq!(p.lines[0].crossings.len(), 1);
        let c = &p.lines[0].crossings[0];
        assert_eq!(c.crossing, live_out[0]);
        // pictures every 5th frame (1 s): the nearest is at most half a second away
        let pic = c.picture.as_ref().expect("a picture");
        let taken = pic[0] as f64 / 5.0;
        assert!(
            (taken - c.crossing.time).abs() <= 0.5 + 1e-9,
            "{taken} vs {}",
            c.crossing.time
        );
    }

    #[test]
    fn a_line_elsewhere_counts_nothing_and_a_reversed_line_counts_the_other_way() {
        let mut recent = Recent::new(RecentLimits::default());
        let mut live = LineCounter::new(line(), CountingParams::default());
        walk(&mut recent, &mut live, &mut Vec::new());
        let away = LineSpec::new("far", Point::new(700.0, 0.0), Point::new(700.0, 400.0));
        let back = LineSpec::new("back", Point::new(300.0, 400.0), Point::new(300.0, 0.0));
        let p = recent.preview(&[away, back], &CountingParams::default());
        assert_eq!(p.lines[0].counts, Counts::default());
        let (a, b) = (live.counts(), p.lines[1].counts);
        assert_eq!((a.in_, a.out), (b.out, b.in_));
        assert_eq!(p.lines[1].crossings.len(), 1);
        assert_ne!(
            p.lines[1].crossings[0].crossing.direction,
            if a.in_ == 1 {
                Direction::In
            } else {
                Direction::Out
            }
        );
    }

    #[test]
    fn the_record_keeps_only_its_window_and_its_picture_budget() {
        let limits = RecentLimits {
            keep: 2.0,
            max_frames: 1000,
            max_look_bytes: 250,
        };
        let mut recent = Recent::new(limits);
        let mut live = LineCounter::new(line(), CountingParams::default());
        walk(&mut recent, &mut live, &mut Vec::new());
        // 3.8 s walked, 2 s kept: frames at 1.8 .. 3.8 s
        assert_eq!(recent.frames(), 11);
        assert!(recent.picture_bytes() <= 250);
        assert!(recent.picture_bytes() >= 100);
        let limits = RecentLimits {
            keep: 100.0,
            max_frames: 7,
            max_look_bytes: 1 << 20,
        };
        let mut recent = Recent::new(limits);
        walk(&mut recent, &mut live, &mut Vec::new());
        assert_eq!(recent.frames(), 7);
    }

    #[test]
    fn an_empty_record_previews_nothing() {
        let p = Recent::new(RecentLimits::default()).preview(&[line()], &CountingParams::default());
        assert_eq!((p.frames, p.seconds), (0, 0.0));
        assert!(p.from.is_none());
        assert!(p.lines[0].crossings.is_empty());
    }
}
