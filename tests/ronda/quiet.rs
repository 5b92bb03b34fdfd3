//! A quiet area camera on the real pipeline (`ronda sim --quiet` and `ronda run`): while nothing
//! moves it decodes only its key frames, and the passer-by who comes along is still found (an
//! intrusion in a zone over the whole view), after which it decodes every picture again; it
//! searches regions around the walkers (`[detector] area_regions`) between whole-picture looks,
//! and goes back to key frames only when the view is still again.

use crate::support as common;

use std::time::{Duration, Instant};

use common::{free_port, metric, metrics, sample, start_sim_with};

#[test]
fn a_quiet_camera_decodes_key_frames_only_yet_finds_its_passer_by() {
    let port = free_port();
    // 12 s of the empty background, then 4 s of vtest's walkers, again and again
    let _sim = start_sim_with(
        port,
        &sample("vtest.avi"),
        &["--cameras", "1", "--quiet", "1", "--quiet-still", "12"],
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ronda.toml");
    let http = free_port();
    std::fs::write(
        &cfg,
        format!(
            "[site]\nid = \"sepi\"\n[mqtt]\nlisten = \"127.0.0.1:{mqtt}\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\nmetrics_public = true\n\
             [store]\npath = \"{d}/ronda.db\"\nclips_dir = \"{d}/clips\"\n\
             [detector]\nmodel = \"int8\"\narea_person_model = \"person_small\"\narea_regions = true\n\
             [[cameras]]\nid = \"kebun\"\nurl = \"rtsp://127.0.0.1:{port}/cam01\"\nanalysis_fps = 5\n\
             [[cameras.zones]]\nname = \"kebun\"\nkind = \"restricted\"\n\
             polygon = [[0, 0], [2000, 0], [2000, 2000], [0, 2000]]\n",
            mqtt = free_port(),
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let (_run, events) = common::run_printing_events(&cfg);
    let deadline = Instant::now() + Duration::from_secs(600);
    let get = |m: &str, name| metric(m, name, "kebun").unwrap_or(0.0);

    // still: key frames only, pictures skipped, the camera online all along
    let skipped_while_quiet = loop {
        if let Some(m) = metrics(http)
            && get(&m, "ronda_camera_keyframes_only") == 1.0
            && get(&m, "ronda_camera_pictures_skipped_total") >= 60.0
        {
            assert_eq!(get(&m, "ronda_camera_online"), 1.0);
            assert_eq!(get(&m, "ronda_camera_reconnects_total"), 0.0);
            break get(&m, "ronda_camera_pictures_skipped_total");
        }
        assert!(
            Instant::now() < deadline,
            "the quiet camera never went to key frames only"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    println!("quiet: {skipped_while_quiet} pictures skipped, key frames only");

    // the passer-by: found by the detector, an intrusion in the zone
    let intrusion = loop {
        match events.recv_timeout(Duration::from_millis(500)) {
            Ok(e) if e["type"] == "intrusion" => break e,
            _ => assert!(
                Instant::now() < deadline,
                "the passer-by was never found on the quiet camera"
            ),
        }
    };
    assert_eq!(intrusion["camera"], "kebun");
    // and while they walk, the camera decodes every picture again
    let m = loop {
        if let Some(m) = metrics(http)
            && get(&m, "ronda_camera_keyframes_only") == 0.0
        {
            break m;
        }
        assert!(Instant::now() < deadline, "decoding never resumed");
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "passer-by found; decoding every picture again ({} skipped in all, {} analysed)",
        get(&m, "ronda_camera_pictures_skipped_total"),
        get(&m, "ronda_camera_frames_analysed_total")
    );
    // the camera searches regions around the walkers between its whole-picture searches
    let m = loop {
        if let Some(m) = metrics(http)
            && get(&m, "ronda_camera_region_searches_total") >= 1.0
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the area camera never searched regions only"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let (whole, searches, regions) = (
        get(&m, "ronda_camera_whole_searches_total"),
        get(&m, "ronda_camera_region_searches_total"),
        get(&m, "ronda_camera_regions_searched_total"),
    );
    assert!(whole >= 1.0, "a whole-picture search comes first");
    assert!(
        regions >= searches,
        "each region search searches a region or more"
    );
    println!("{whole} whole-picture searches, {searches} of regions ({regions} regions)");

    // once the walkers have gone the view is still again, and the camera goes back to key
    // frames only: nothing it saw meanwhile (a weak detection in the background the tracker
    // keeps, someone standing) keeps it decoding every picture
    let skipped_after_walkers = get(&m, "ronda_camera_pictures_skipped_total");
    loop {
        if let Some(m) = metrics(http)
            && get(&m, "ronda_camera_keyframes_only") == 1.0
            && get(&m, "ronda_camera_pictures_skipped_total") >= skipped_after_walkers + 60.0
        {
            println!(
                "still again: key frames only, {} skipped in all",
                get(&m, "ronda_camera_pictures_skipped_total")
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the camera kept decoding every picture after the walkers had gone"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
