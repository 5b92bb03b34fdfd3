//! Whose turn it is at the detector: one worker serves every camera, gate cameras first.
//!
//! The gate's count is the number the village trusts most, so a gate camera's picture goes before
//! anyone else's. But "first" alone hands the whole detector to the gate when its pictures come
//! faster than the detector can look at them (a slow or busy box, two gate cameras, a high
//! `analysis_fps`): each look ends with the gate's next picture waiting, and every other camera (a
//! thief in a restricted zone, a crowd at the musholla) is never looked at again, silently. Seen:
//! `ronda demo` (its gate camera at 10 pictures a second) beside three other heavy processes on 2
//! cores, where a gate camera's look took 250 ms, raised no area camera's alert in 5 minutes; four
//! gate cameras at 15 a second left a yard unseen on an idle box. So the gate takes at most
//! [`GATE_RUN`] looks in a row while another camera waits; then one other camera has its turn. A
//! box that keeps up never sees the limit: the gate's next picture has not come when its look
//! ends, and the others are served in between, as before. Gate cameras take their looks in turn
//! too: with four gate cameras the first in the list took every one of them.

/// Gate pictures looked at in a row, while another camera waits, before one other camera's turn:
/// under overload the gate keeps three looks in four (its counting still sees several pictures a
/// second) and the other cameras share the fourth, in turn.
pub(super) const GATE_RUN: u32 = 3;

/// A camera as the turn-taking sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Waiting {
    /// A gate camera (served first).
    pub(super) gate: bool,
    /// A picture is waiting for the detector.
    pub(super) ready: bool,
    /// A still camera that just woke: its first picture goes before the other area cameras'.
    pub(super) first_look: bool,
}

/// The worker's turn-taking between cameras.
#[derive(Debug, Default)]
pub(super) struct Turns {
    /// Where the round of the gate cameras goes on (a village may have two gates, or a camera
    /// each way: the first in the list must not take every gate look).
    next_gate: usize,
    /// Where the round of the other cameras goes on.
    next_other: usize,
    /// Gate looks in a row while another camera waited.
    gate_run: u32,
}

impl Turns {
    /// The camera to look at next (index into `cams`), or `None` when no picture waits: a gate
    /// camera (in turn), unless the gates have had [`GATE_RUN`] looks in a row while another
    /// camera waited; then a camera that just woke; then the others round-robin.
    pub(super) fn pick(&mut self, cams: &[Waiting]) -> Option<usize> {
        let n = cams.len();
        let gate = (0..n)
            .map(|k| (self.next_gate + k) % n)
            .find(|&i| cams[i].gate && cams[i].ready);
        let other = || {
            cams.iter()
                .position(|c| !c.gate && c.ready && c.first_look)
                .or_else(|| {
                    (0..n)
                        .map(|k| (self.next_other + k) % n)
                        .find(|&i| !cams[i].gate && cams[i].ready)
                })
        };
        let pick = match gate {
            Some(g) if self.gate_run < GATE_RUN => {
                if other().is_some() {
                    self.gate_run += 1;
                }
                self.next_gate = (g + 1) % n;
                return Some(g);
            }
            _ => other().or(gate)?,
        };
        if cams[pick].gate {
            // nobody else waits: the gates' run does not grow
            self.next_gate = (pick + 1) % n;
            return Some(pick);
        }
        self.gate_run = 0;
        if !cams[pick].first_look {
            self.next_other = (pick + 1) % n;
        }
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATE: Waiting = Waiting {
        gate: true,
        ready: true,
        first_look: false,
    };
    const AREA: Waiting = Waiting {
        gate: false,
        ready: true,
        first_look: false,
    };
    const IDLE: Waiting = Waiting {
        gate: false,
        ready: false,
        first_look: false,
    };

    /// `n` picks with the same cameras waiting every time (the gate always has its next picture).
    fn picks(turns: &mut Turns, cams: &[Waiting], n: usize) -> Vec<usize> {
        (0..n).map(|_| turns.pick(cams).unwrap()).collect()
    }

    #[test]
    fn a_gate_that_always_has_a_picture_leaves_every_fourth_look_to_the_others_in_turn() {
        let cams = [AREA, GATE, AREA, IDLE, AREA];
        let got = picks(&mut Turns::default(), &cams, 12);
        assert_eq!(got, [1, 1, 1, 0, 1, 1, 1, 2, 1, 1, 1, 4]);
    }

    #[test]
    fn gate_cameras_take_their_looks_in_turn() {
        // two gates always waiting, nobody else: each has every other look
        let got = picks(&mut Turns::default(), &[GATE, IDLE, GATE], 6);
        assert_eq!(got, [0, 2, 0, 2, 0, 2]);
        // with a yard waiting too: the gates' run of three is shared, then the yard
        let got = picks(&mut Turns::default(), &[GATE, AREA, GATE], 8);
        assert_eq!(got, [0, 2, 0, 1, 2, 0, 2, 1]);
    }

    #[test]
    fn a_gate_alone_is_served_every_time() {
        let cams = [GATE, IDLE];
        let mut turns = Turns::default();
        assert_eq!(picks(&mut turns, &cams, 8), [0; 8]);
        // its run did not grow while nobody else waited: the gate first once another does
        assert_eq!(turns.pick(&[GATE, AREA]), Some(0));
    }

    #[test]
    fn a_gate_that_keeps_up_goes_first_whenever_it_has_a_picture() {
        // the gate's picture waits every other pick (the detector is twice as fast as it)
        let mut turns = Turns::default();
        let mut got = Vec::new();
        for k in 0..8 {
            let gate = Waiting {
                ready: k % 2 == 0,
                ..GATE
            };
            got.push(turns.pick(&[gate, AREA, AREA]).unwrap());
        }
        assert_eq!(got, [0, 1, 0, 2, 0, 1, 0, 2]);
    }

    #[test]
    fn a_camera_that_just_woke_goes_before_the_round_and_does_not_move_it() {
        let woke = Waiting {
            first_look: true,
            ..AREA
        };
        let mut turns = Turns::default();
        assert_eq!(turns.pick(&[AREA, AREA, woke]), Some(2));
        // the round starts where it was
        assert_eq!(turns.pick(&[AREA, AREA, AREA]), Some(0));
        assert_eq!(turns.pick(&[AREA, AREA, AREA]), Some(1));
        // after the gate's run, a camera that just woke is the one served
        let got = picks(&mut turns, &[GATE, AREA, woke], 4);
        assert_eq!(got, [0, 0, 0, 2]);
    }

    #[test]
    fn nothing_waiting_is_no_pick() {
        assert_eq!(Turns::default().pick(&[IDLE, IDLE]), None);
        assert_eq!(Turns::default().pick(&[]), None);
    }
}
