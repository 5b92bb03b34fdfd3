//! Tracker + line counter per frame, without inference: the cost the analysis adds on top of the
//! detector (issue 3 asks for it to stay small). Synthetic crowd of 20 people walking across a
//! gate line, so the figure does not depend on footage.

use criterion::{Criterion, criterion_group, criterion_main};
use ronda::detect::{Detection, PERSON};
use ronda::geometry::{BBox, Point};
use ronda::rules::{CountingParams, LineCounter, LineSpec, Tick};
use ronda::track::{Tracker, TrackerParams};

fn frames(n: usize, people: usize) -> Vec<Vec<Detection>> {
    (0..n)
        .map(|f| {
            (0..people)
                .map(|p| {
                    let x = ((f * (2 + p % 5)) % 700) as f32 + (p * 13 % 40) as f32;
                    let y = 40.0 + (p * 23 % 400) as f32;
                    Detection {
                        bbox: BBox::new(x, y, x + 30.0, y + 80.0),
                        score: 0.3 + (p % 7) as f32 * 0.1,
                        class: PERSON,
                    }
                })
                .collect()
        })
        .collect()
}

fn gate(c: &mut Criterion) {
    let input = frames(500, 20);
    c.bench_function("track+rules/20 people/frame", |b| {
        let mut tracker = Tracker::new(TrackerParams::default());
        let mut line = LineCounter::new(
            LineSpec::new("gate", Point::new(360.0, 0.0), Point::new(360.0, 480.0)),
            CountingParams::default(),
        );
        let mut out = Vec::with_capacity(16);
        let mut i = 0usize;
        b.iter(|| {
            // the stream's time, as the live path gives it (the heading needs it)
            let tracks = tracker.update_at(i as f64 / 10.0, &input[i % input.len()]);
            out.clear();
            line.update(Tick::new(i as u64, i as f64 / 10.0), tracks, &mut out);
            i += 1;
        })
    });
}

criterion_group!(benches, gate);
criterion_main!(benches);
