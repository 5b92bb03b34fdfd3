//! Decoding a video file with GStreamer, every frame, as fast as the machine allows.
//!
//! `filesrc ! decodebin ! videoconvert ! RGB appsink sync=false`: decodebin picks the demuxer and
//! decoder (MP4, MKV, AVI, ...), `sync=false` removes real-time pacing, and the appsink's small
//! queue (4 buffers) makes the decoder wait for the consumer instead of piling frames in memory
//! (for files, dropping a frame would change the result).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::{IngestError, init_gstreamer};
use crate::frame::Frame;

/// What is known about a file once it has started decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// Frames per second declared by the stream (0 when it declares none).
    pub fps: f64,
    /// Duration declared by the container, when it has one.
    pub duration_s: Option<f64>,
}

/// An open video file: iterate it for frames.
pub struct VideoFile {
    path: PathBuf,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    info: VideoInfo,
    next_index: u64,
    first: Option<gst::Sample>,
    done: bool,
    /// Pictures handed out, reused once the caller let them go.
    pool: FramePool,
}

impl VideoFile {
    /// Open and preroll the file: a missing, corrupt or non-video file fails here, by name.
    pub fn open(path: &Path) -> Result<VideoFile, IngestError> {
        init_gstreamer()?;
        if !path.is_file() {
            return Err(IngestError::Missing {
                path: path.to_path_buf(),
            });
        }
        let unreadable = |reason: String| IngestError::Unreadable {
            path: path.to_path_buf(),
            reason,
        };
        let pipeline = gst::parse::launch(
            "filesrc name=src ! decodebin name=dec ! videoconvert ! \
             video/x-raw,format=RGB ! appsink name=sink sync=false max-buffers=4 drop=false",
        )
        .map_err(|e| unreadable(format!("pipeline: {e}")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| unreadable("pipeline: not a pipeline".into()))?;
        let src = pipeline
            .by_name("src")
            .ok_or_else(|| unreadable("pipeline has no filesrc".into()))?;
        src.set_property("location", path.to_string_lossy().as_ref());
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| unreadable("pipeline has no appsink".into()))?;

        let mut file = VideoFile {
            path: path.to_path_buf(),
            pipeline,
            sink,
            info: VideoInfo {
                width: 0,
                height: 0,
                fps: 0.0,
                duration_s: None,
            },
            next_index: 0,
            first: None,
            done: false,
            pool: FramePool::default(),
        };
        if file.pipeline.set_state(gst::State::Playing).is_err() {
            return Err(unreadable(
                file.bus_error().unwrap_or_else(|| "does not start".into()),
            ));
        }
        // The first frame tells the size and rate; an error before it means the file is bad.
        match file.pull(Duration::from_secs(30))? {
            Some(sample) => {
                file.info = info_of(&sample).map_err(unreadable)?;
                if let Some(d) = file.pipeline.query_duration::<gst::ClockTime>() {
                    file.info.duration_s = Some(d.nseconds() as f64 / 1e9);
                }
                file.first = Some(sample);
            }
            None => {
                return Err(unreadable(
                    file.bus_error()
                        .unwrap_or_else(|| "it holds no video frames".into()),
                ));
            }
        }
        Ok(file)
    }

    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next frame; `Ok(None)` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, IngestError> {
        if self.done {
            return Ok(None);
        }
        let sample = match self.first.take() {
            Some(s) => s,
            None => match self.pull(Duration::from_secs(60))? {
                Some(s) => s,
                None => {
                    self.done = true;
                    return Ok(None);
                }
            },
        };
        let index = self.next_index;
        self.next_index += 1;
        let frame = frame_from_pool(&sample, index, &mut self.pool).map_err(|reason| {
            IngestError::Decode {
                path: self.path.clone(),
                frame: index,
                reason,
            }
        })?;
        Ok(Some(frame))
    }

    /// Pull one sample: `None` at end of stream; errors from the bus are reported by name.
    fn pull(&mut self, limit: Duration) -> Result<Option<gst::Sample>, IngestError> {
        let step = gst::ClockTime::from_mseconds(100);
        let mut waited = Duration::ZERO;
        loop {
            if let Some(s) = self.sink.try_pull_sample(step) {
                return Ok(Some(s));
            }
            if let Some(reason) = self.bus_error() {
                self.done = true;
                return Err(IngestError::Decode {
                    path: self.path.clone(),
                    frame: self.next_index,
                    reason,
                });
            }
            if self.sink.is_eos() {
                return Ok(None);
            }
            waited += Duration::from_millis(100);
            if waited >= limit {
                self.done = true;
                return Err(IngestError::Decode {
                    path: self.path.clone(),
                    frame: self.next_index,
                    reason: format!("no frame for {} s: the decoder is stuck", limit.as_secs()),
                });
            }
        }
    }

    /// The first error message waiting on the bus, readable for a person.
    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                return Some(err.error().to_string());
            }
        }
        None
    }
}

impl Iterator for VideoFile {
    type Item = Result<Frame, IngestError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

impl Drop for VideoFile {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn info_of(sample: &gst::Sample) -> Result<VideoInfo, String> {
    let caps = sample.caps().ok_or("decoded frames carry no format")?;
    let vi = gst_video::VideoInfo::from_caps(caps).map_err(|e| format!("video format: {e}"))?;
    let fps = vi.fps();
    let fps = if fps.denom() > 0 {
        fps.numer() as f64 / fps.denom() as f64
    } else {
        0.0
    };
    Ok(VideoInfo {
        width: vi.width(),
        height: vi.height(),
        fps,
        duration_s: None,
    })
}

/// Copy a decoded RGB sample into a tightly packed image (GStreamer pads rows to 4 bytes).
pub fn frame_of(sample: &gst::Sample, index: u64) -> Result<Frame, String> {
    frame_from_pool(sample, index, &mut FramePool::default())
}

/// Pictures a camera handed out lately, for reuse once nobody holds them any more: a 360p
/// picture is half a megabyte, and allocating one per analysed frame per camera (200 a second
/// at 40 cameras) maps and faults in fresh memory every time.
#[derive(Debug, Default)]
pub struct FramePool {
    recent: Vec<Arc<image::RgbImage>>,
}

/// Pictures a pool keeps: the slot's waiting frame, the newest (live picture), the one the
/// detector has and a spare.
const POOL: usize = 4;

/// [`frame_of`] into a picture of `pool` that nobody else holds, when there is one.
pub fn frame_from_pool(
    sample: &gst::Sample,
    index: u64,
    pool: &mut FramePool,
) -> Result<Frame, String> {
    let caps = sample.caps().ok_or("frame without format")?;
    let vi = gst_video::VideoInfo::from_caps(caps).map_err(|e| format!("video format: {e}"))?;
    let buffer = sample.buffer().ok_or("frame without data")?;
    let map = buffer
        .map_readable()
        .map_err(|e| format!("frame data: {e}"))?;
    let (w, h) = (vi.width() as usize, vi.height() as usize);
    let stride = vi.stride()[0] as usize;
    let row = w * 3;
    if map.len() < stride * (h - 1) + row {
        return Err(format!(
            "frame is {} bytes, {w}x{h} RGB needs more",
            map.len()
        ));
    }
    let free = pool.recent.iter().position(|a| {
        Arc::strong_count(a) == 1
            && Arc::weak_count(a) == 0
            && a.dimensions() == (w as u32, h as u32)
    });
    let image = match free {
        Some(i) => {
            let mut a = pool.recent.swap_remove(i);
            let img = Arc::get_mut(&mut a).ok_or("frame still held")?;
            for (y, out) in img.chunks_exact_mut(row).enumerate() {
                out.copy_from_slice(&map[y * stride..y * stride + row]);
            }
            a
        }
        None => {
            let mut px = Vec::with_capacity(row * h);
            for y in 0..h {
                px.extend_from_slice(&map[y * stride..y * stride + row]);
            }
            Arc::new(
                image::RgbImage::from_raw(w as u32, h as u32, px).ok_or("frame size mismatch")?,
            )
        }
    };
    if pool.recent.len() >= POOL {
        pool.recent.remove(0);
    }
    pool.recent.push(image.clone());
    Ok(Frame {
        image,
        index,
        pts_ns: buffer.pts().map(|t| t.nseconds()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 6x2 RGB sample (rows padded to 20 bytes, as GStreamer pads them to 4) of value `v`.
    fn sample(v: u8) -> gst::Sample {
        init_gstreamer().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 6, 2)
            .build()
            .unwrap();
        assert_eq!(info.stride()[0], 20);
        let buf = gst::Buffer::from_mut_slice(vec![v; info.size()]);
        gst::Sample::builder()
            .buffer(&buf)
            .caps(&info.to_caps().unwrap())
            .build()
    }

    #[test]
    fn a_picture_nobody_holds_is_reused_and_one_still_held_is_not() {
        let mut pool = FramePool::default();
        let a = frame_from_pool(&sample(1), 0, &mut pool).unwrap();
        assert_eq!(a.image.dimensions(), (6, 2));
        assert!(a.image.iter().all(|&p| p == 1), "rows unpadded");
        // `a` still held (by the detector, say): a new picture
        let b = frame_from_pool(&sample(2), 1, &mut pool).unwrap();
        assert!(!Arc::ptr_eq(&a.image, &b.image));
        assert!(
            a.image.iter().all(|&p| p == 1),
            "the held picture is untouched"
        );
        // `a` let go: its room is reused, with the new picture in it
        let a_ptr = Arc::as_ptr(&a.image);
        drop(a);
        let c = frame_from_pool(&sample(3), 2, &mut pool).unwrap();
        assert_eq!(Arc::as_ptr(&c.image), a_ptr);
        assert!(c.image.iter().all(|&p| p == 3));
        assert_eq!(c.index, 2);
    }
}
