//! The motion gate per picture (a 640x360 camera): the worker runs it on every gated camera's
//! newest picture before the detector takes one, so its cost times 40 cameras at 15 fps must
//! stay a small share of a core. Synthetic street with a walker, so the figure does not depend on
//! footage.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use image::{Rgb, RgbImage};
use ronda::motion::{MotionGate, MotionParams};

fn street(walker_x: u32) -> RgbImage {
    RgbImage::from_fn(640, 360, |x, y| {
        if (walker_x..walker_x + 20).contains(&x) && (150..230).contains(&y) {
            Rgb([40, 40, 60])
        } else {
            let v = if y > 200 {
                110 + (x / 40 % 2) as u8 * 20
            } else {
                70
            };
            Rgb([v, v, v])
        }
    })
}

fn motion(c: &mut Criterion) {
    let pictures: Vec<RgbImage> = (0..30).map(|i| street(100 + 6 * i)).collect();
    let still = street(700);
    let t0 = Instant::now();
    c.bench_function("motion gate/640x360/still picture", |b| {
        let mut g = MotionGate::new(MotionParams::default());
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            g.pass(&still, t0 + Duration::from_millis(i))
        })
    });
    c.bench_function("motion gate/640x360/walker", |b| {
        let mut g = MotionGate::new(MotionParams::default());
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            g.pass(
                &pictures[i % pictures.len()],
                t0 + Duration::from_millis(i as u64),
            )
        })
    });
}

criterion_group!(benches, motion);
criterion_main!(benches);
