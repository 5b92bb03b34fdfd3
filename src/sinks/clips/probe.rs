//! Reading a finished clip back: its play time from the MP4 index and its size, without
//! GStreamer (used at start for the clips an interrupted run left pending).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

/// The play time (if the index says) and size of the MP4 at `path`, if it is one with its index
/// (`moov` with `mvhd`); why not otherwise.
pub fn probe_mp4(path: &Path) -> Result<(Option<Duration>, u64), String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut at = 0u64;
    let mut seen_ftyp = false;
    // top-level boxes: ftyp, moov (first with faststart), mdat, ...
    for _ in 0..64 {
        let Some((kind, start, end)) = read_box(&mut f, at, len)? else {
            break;
        };
        match &kind {
            b"ftyp" => seen_ftyp = true,
            b"moov" if seen_ftyp => {
                let mut inner = start;
                while let Some((k, s, e)) = read_box(&mut f, inner, end)? {
                    if &k == b"mvhd" {
                        return Ok((read_mvhd(&mut f, s, e)?, len));
                    }
                    inner = e;
                }
                return Err("its index (moov) has no header (mvhd)".into());
            }
            _ => {}
        }
        at = end;
    }
    Err("not an MP4 with its index (ftyp, moov)".into())
}

/// The box at `at` (before `limit`): its type and the range of its contents.
fn read_box(f: &mut File, at: u64, limit: u64) -> Result<Option<([u8; 4], u64, u64)>, String> {
    if at + 8 > limit {
        return Ok(None);
    }
    let mut h = [0u8; 8];
    f.seek(SeekFrom::Start(at))
        .and_then(|_| f.read_exact(&mut h))
        .map_err(|e| e.to_string())?;
    let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
    let kind = [h[4], h[5], h[6], h[7]];
    let (start, end) = match size {
        0 => (at + 8, limit),
        1 => {
            let mut l = [0u8; 8];
            f.read_exact(&mut l).map_err(|e| e.to_string())?;
            (at + 16, at + u64::from_be_bytes(l))
        }
        n => (at + 8, at + n),
    };
    if end < start || end > limit {
        return Err(format!(
            "box {} at {at} runs past its end",
            String::from_utf8_lossy(&kind)
        ));
    }
    Ok(Some((kind, start, end)))
}

fn read_mvhd(f: &mut File, start: u64, end: u64) -> Result<Option<Duration>, String> {
    let mut b = vec![0u8; (end - start).min(32) as usize];
    f.seek(SeekFrom::Start(start))
        .and_then(|_| f.read_exact(&mut b))
        .map_err(|e| e.to_string())?;
    let be32 = |i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_be_bytes(s.try_into().unwrap()))
    };
    let (scale, duration) = match b.first() {
        Some(0) => (be32(12), be32(16).map(u64::from)),
        Some(1) => (
            be32(20),
            b.get(24..32)
                .map(|s| u64::from_be_bytes(s.try_into().unwrap())),
        ),
        _ => (None, None),
    };
    let scale = scale.ok_or("its movie header (mvhd) is too short")?;
    Ok(match (scale, duration) {
        (0, _) | (_, None) | (_, Some(0)) => None,
        (s, Some(d)) => Some(Duration::from_millis(d.saturating_mul(1000) / s as u64)),
    })
}
