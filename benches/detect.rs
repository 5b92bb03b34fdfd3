//! One frame through the person detector: preprocessing, inference and decoding, for the fp32
//! and int8 models at 1 and 2 threads (issue 2). Run with `make bench` or
//! `cargo bench --bench detect`. Figures are per frame on this machine; compare them as ratios.

use criterion::{Criterion, criterion_group, criterion_main};
use ronda::detect::{DetectorOptions, PersonDetector, Variant};

fn frame() -> image::RgbImage {
    let p = ronda::paths::samples_dir().join("bus.jpg");
    image::open(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", p.display()))
        .to_rgb8()
}

fn person(c: &mut Criterion) {
    let img = frame();
    let mut g = c.benchmark_group("person");
    g.sample_size(30);
    for variant in [Variant::Fp32, Variant::Int8] {
        for threads in [1usize, 2] {
            let mut o = DetectorOptions::default();
            o.runtime.threads = threads;
            let mut d = PersonDetector::new(&o, variant).expect("person model loads");
            let name = format!("{variant:?}/{threads}thr").to_lowercase();
            g.bench_function(format!("{name}/preprocess"), |b| {
                b.iter(|| d.preprocess(&img))
            });
            g.bench_function(format!("{name}/whole"), |b| {
                b.iter(|| {
                    let src = d.preprocess(&img);
                    d.run().expect("inference");
                    d.postprocess(src)
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, person);
criterion_main!(benches);
