//! A quiet camera's stir told from the sizes of the pictures it does not decode (pure logic).
//!
//! A camera decoding only its key frames (`camera::FrameSlot::set_keyframes_only`) would see a
//! passer-by who comes in just after a key frame only at the next one, up to a GOP (2 s on most
//! cameras) later. The pictures in between still arrive, encoded: a still scene's are small (the
//! encoder sends "nothing changed"), and someone coming into view makes them grow at once (new
//! content costs bits). So each skipped picture's size is compared with the usual size of the
//! camera's skipped pictures; a jump makes the camera decode the pictures held since its last
//! decoded one (cheap: still pictures) and go on decoding until its next key frame, and the
//! motion gate judges the newest at once. A camera whose encoder pads every picture to the same
//! size (strict CBR) never jumps, and keeps the key-frame behaviour; one with a noisy night
//! picture has a larger usual size, against which the jump is judged.

/// How many times the usual size a skipped picture must reach to count as a stir.
pub const JUMP: f64 = 4.0;
/// ...and by how many bytes at least (a still picture of a few dozen bytes doubling is noise).
pub const MIN_GROWTH: f64 = 600.0;
/// Skipped pictures seen before the usual size is trusted.
const LEARN: u32 = 5;
/// Weight of a new size in the usual size (a running mean over about ten pictures).
const WEIGHT: f64 = 0.1;

/// The usual size of a camera's skipped pictures, and the verdict on the next one.
#[derive(Debug, Default, Clone)]
pub struct SizeWatch {
    usual: f64,
    seen: u32,
}

impl SizeWatch {
    /// A skipped picture of `bytes`: `true` when it is a stir (it is then not learnt as usual).
    pub fn skipped(&mut self, bytes: usize) -> bool {
        let b = bytes as f64;
        if self.seen >= LEARN && b > JUMP * self.usual && b - self.usual > MIN_GROWTH {
            return true;
        }
        self.usual = if self.seen == 0 {
            b
        } else {
            self.usual + (b - self.usual) * WEIGHT
        };
        self.seen = self.seen.saturating_add(1);
        false
    }

    /// The usual size so far, bytes (0 before the first).
    pub fn usual(&self) -> f64 {
        self.usual
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passer_by_makes_the_pictures_jump_noise_does_not() {
        let mut w = SizeWatch::default();
        // a still scene: 40-90 bytes a picture
        for i in 0..30 {
            assert!(!w.skipped(40 + (i * 17) % 50), "still picture {i}");
        }
        // a picture twice as big is not a stir (too few bytes)
        assert!(!w.skipped(150));
        // someone comes into view: kilobytes
        assert!(w.skipped(3000));
        // not learnt: the next still picture is judged against the still scene
        assert!(w.usual() < 120.0, "{}", w.usual());
    }

    #[test]
    fn a_noisy_night_picture_raises_the_bar_and_nothing_is_judged_before_learning() {
        let mut w = SizeWatch::default();
        assert!(!w.skipped(10), "first");
        assert!(!w.skipped(5000), "still learning");
        let mut w = SizeWatch::default();
        for i in 0..40 {
            assert!(!w.skipped(2000 + (i * 97) % 1500), "noise {i}");
        }
        // 5 kB is usual noise here, 20 kB is not
        assert!(!w.skipped(5000));
        assert!(w.skipped(20_000));
    }
}
