//! The in-memory ring of a camera's encoded access units (H.264 as received, never re-encoded),
//! from which an incident's clip takes its pre-roll and post-roll.
//!
//! Memory is bounded two ways: by time (`keep`: units older than that are dropped, but always a
//! whole GOP at a time so the ring starts on a keyframe and a clip cut from it plays from its
//! first frame) and by bytes (`max_bytes`: a camera that never sends a keyframe, or sends
//! huge ones, cannot grow the ring without bound; such drops are counted).
//!
//! Buffers are reference-counted by GStreamer: pushing one costs a pointer, not a copy.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use gstreamer as gst;

/// One encoded picture (an access unit) with when it arrived.
#[derive(Clone, Debug)]
pub struct AccessUnit {
    pub buffer: gst::Buffer,
    pub keyframe: bool,
    /// Wall-clock arrival: events are stamped with the wall clock, so clips are cut by it.
    pub at: SystemTime,
}

impl AccessUnit {
    pub fn size(&self) -> usize {
        self.buffer.size()
    }
}

#[derive(Default)]
struct Inner {
    units: VecDeque<AccessUnit>,
    bytes: usize,
    caps: Option<gst::Caps>,
}

/// A camera's recent encoded stream.
pub struct EncodedRing {
    keep: Duration,
    max_bytes: usize,
    inner: Mutex<Inner>,
    /// Bytes dropped because of `max_bytes` (not the normal ageing out).
    pub overflow_bytes: AtomicU64,
}

/// What a clip needs: the stream's format and the units, starting on a keyframe.
#[derive(Clone, Debug)]
pub struct RingCut {
    pub caps: Option<gst::Caps>,
    pub units: Vec<AccessUnit>,
}

impl EncodedRing {
    pub fn new(keep: Duration, max_bytes: usize) -> Self {
        Self {
            keep,
            max_bytes,
            inner: Mutex::new(Inner::default()),
            overflow_bytes: AtomicU64::new(0),
        }
    }

    pub fn keep(&self) -> Duration {
        self.keep
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forget everything: a new connection may bring another format and restarts timestamps.
    pub fn clear(&self) {
        let mut g = self.lock();
        g.units.clear();
        g.bytes = 0;
        g.caps = None;
    }

    /// Add a unit as it arrives.
    pub fn push(&self, unit: AccessUnit, caps: Option<&gst::CapsRef>) {
        let mut g = self.lock();
        if let Some(c) = caps
            && g.caps.as_ref().is_none_or(|old| old.as_ref() != c)
        {
            g.caps = Some(c.to_owned());
        }
        let newest = unit.at;
        g.bytes += unit.size();
        g.units.push_back(unit);
        // a ring that does not start on a keyframe is useless until one arrives
        if !g.units.front().is_some_and(|u| u.keyframe)
            && let Some(k) = g.units.iter().position(|u| u.keyframe)
        {
            drop_front(&mut g, k);
        }
        // age out whole GOPs: drop up to the last keyframe that is still older than `keep`
        let cutoff = newest
            .checked_sub(self.keep)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let last_old_key = g
            .units
            .iter()
            .enumerate()
            .skip(1)
            .take_while(|(_, u)| u.at <= cutoff)
            .filter(|(_, u)| u.keyframe)
            .map(|(i, _)| i)
            .last();
        if let Some(k) = last_old_key {
            drop_front(&mut g, k);
        }
        let mut overflow = 0;
        while g.bytes > self.max_bytes && g.units.len() > 1 {
            if let Some(u) = g.units.pop_front() {
                g.bytes -= u.size();
                overflow += u.size();
            }
        }
        if overflow > 0 {
            self.overflow_bytes
                .fetch_add(overflow as u64, Ordering::Relaxed);
        }
    }

    /// Units from the last keyframe at or before `from` (or the oldest keyframe) up to `until`.
    pub fn cut(&self, from: SystemTime, until: SystemTime) -> RingCut {
        let g = self.lock();
        let start = g
            .units
            .iter()
            .rposition(|u| u.keyframe && u.at <= from)
            .or_else(|| g.units.iter().position(|u| u.keyframe));
        let units = match start {
            Some(s) => g
                .units
                .iter()
                .skip(s)
                .take_while(|u| u.at <= until)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        RingCut {
            caps: g.caps.clone(),
            units,
        }
    }

    /// Units from the keyframe nearest to `from` (before or after it) up to `until`: a clip cut
    /// this way is within half a keyframe interval of the asked length, where starting always
    /// before `from` could make it a whole interval longer.
    pub fn cut_nearest(&self, from: SystemTime, until: SystemTime) -> RingCut {
        let start = {
            let g = self.lock();
            let dist = |t: SystemTime| match t.duration_since(from) {
                Ok(d) => d,
                Err(e) => e.duration(),
            };
            g.units
                .iter()
                .filter(|u| u.keyframe && u.at <= until)
                .min_by_key(|u| dist(u.at))
                .map(|u| u.at)
        };
        match start {
            Some(at) => self.cut(at, until),
            None => self.cut(from, until),
        }
    }

    /// Units held, bytes held, and the time they span.
    pub fn figures(&self) -> (usize, usize, Duration) {
        let g = self.lock();
        let span = match (g.units.front(), g.units.back()) {
            (Some(a), Some(b)) => b.at.duration_since(a.at).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        (g.units.len(), g.bytes, span)
    }
}

fn drop_front(g: &mut Inner, n: usize) {
    for _ in 0..n {
        if let Some(u) = g.units.pop_front() {
            g.bytes -= u.size();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(ms: u64, key: bool, size: usize) -> AccessUnit {
        let _ = gst::init();
        AccessUnit {
            buffer: gst::Buffer::with_size(size).unwrap(),
            keyframe: key,
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms),
        }
    }

    /// 15 fps, a keyframe every 2 s, for `secs` seconds.
    fn fill(ring: &EncodedRing, secs: u64) {
        for i in 0..secs * 15 {
            ring.push(unit(i * 1000 / 15, i % 30 == 0, 1000), None);
        }
    }

    #[test]
    fn the_ring_keeps_at_least_keep_and_starts_on_a_keyframe() {
        let ring = EncodedRing::new(Duration::from_secs(5), usize::MAX);
        fill(&ring, 30);
        let (n, bytes, span) = ring.figures();
        assert!(span >= Duration::from_secs(5), "{span:?}");
        // never more than keep + one GOP
        assert!(span < Duration::from_secs(7), "{span:?}");
        assert_eq!(bytes, n * 1000);
        let cut = ring.cut(SystemTime::now(), SystemTime::now());
        assert!(cut.units[0].keyframe);
    }

    #[test]
    fn a_cut_starts_on_the_keyframe_before_its_start() {
        let ring = EncodedRing::new(Duration::from_secs(20), usize::MAX);
        fill(&ring, 10);
        let t = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms);
        let cut = ring.cut(t(5_000), t(7_000));
        assert!(cut.units[0].keyframe);
        assert_eq!(cut.units[0].at, t(4_000));
        assert!(cut.units.last().unwrap().at <= t(7_000));
    }

    #[test]
    fn a_nearest_cut_starts_on_the_closer_keyframe() {
        let ring = EncodedRing::new(Duration::from_secs(20), usize::MAX);
        fill(&ring, 10);
        let t = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms);
        // keyframes every 2 s: 3.6 s is nearer to 4 s than to 2 s
        assert_eq!(ring.cut_nearest(t(3_600), t(7_000)).units[0].at, t(4_000));
        assert_eq!(ring.cut_nearest(t(4_400), t(7_000)).units[0].at, t(4_000));
        assert_eq!(ring.cut_nearest(t(5_200), t(7_000)).units[0].at, t(6_000));
    }

    #[test]
    fn units_before_the_first_keyframe_are_dropped() {
        let ring = EncodedRing::new(Duration::from_secs(20), usize::MAX);
        ring.push(unit(0, false, 10), None);
        ring.push(unit(66, false, 10), None);
        ring.push(unit(133, true, 10), None);
        assert_eq!(ring.figures().0, 1);
    }

    #[test]
    fn a_stream_without_keyframes_is_bounded_by_bytes() {
        let ring = EncodedRing::new(Duration::from_secs(20), 10_000);
        for i in 0..100 {
            ring.push(unit(i * 66, false, 1000), None);
        }
        assert!(ring.figures().1 <= 10_000);
        assert!(ring.overflow_bytes.load(Ordering::Relaxed) >= 90_000);
    }
}
