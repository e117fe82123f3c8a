//! Cuts a stream of VAD frames into utterances (PROTOCOL.md §3.1).
//!
//! Who decides where speech is:
//! - `auto` and `realtime`: the server VAD, with a hangover of
//!   `min_silence_duration_ms` and a minimum speech length of `min_speech_ms`.
//! - `manual`: the device's `listen start`/`stop` bracket each utterance. When
//!   no boundary has arrived for `manual_listen_fallback_ms`, the server VAD
//!   decides until the next boundary; every boundary refreshes that clock.
//!
//! Time is the stream's audio clock in milliseconds (decoded samples / 16),
//! so results are exact and independent of scheduling. Pure logic: the worker
//! feeds it and tests drive it frame by frame.

use std::collections::VecDeque;

use super::ring::Boundary;
use crate::protocol::inbound::ListenMode;

/// Milliseconds per VAD frame (256 samples at 16 kHz).
pub const FRAME_MS: u64 = 16;
const SAMPLES_PER_MS: u64 = 16;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmenterSettings {
    /// Speech probability at or above which a frame is voice.
    pub threshold: f32,
    /// Silence that ends a server-VAD utterance (the hangover).
    pub min_silence_ms: u64,
    /// Shorter utterances are noise and dropped.
    pub min_speech_ms: u64,
    /// Manual mode hands over to the server VAD after this long without a boundary.
    pub manual_fallback_ms: u64,
    /// Frames kept from before the first voiced frame: the VAD notices speech
    /// a frame or two late, and ASR wants the onset.
    pub pre_roll_frames: usize,
}

impl Default for SegmenterSettings {
    fn default() -> Self {
        SegmenterSettings {
            threshold: 0.5,
            min_silence_ms: 200,
            min_speech_ms: 150,
            manual_fallback_ms: 5000,
            pre_roll_frames: 2,
        }
    }
}

/// Who opened the utterance in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    ServerVad,
    Device,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The hangover of silence passed.
    Silence,
    /// `listen stop`, or a new `listen start` while one was open.
    Boundary,
    /// The connection closed mid-utterance.
    StreamEnd,
}

/// A finished utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    pub start_ms: u64,
    pub end_ms: u64,
    pub pcm: Vec<i16>,
    /// Voiced frames inside, in ms: a device-bracketed utterance may be all silence.
    pub voiced_ms: u64,
    pub listen_mode: ListenMode,
    pub decided_by: Decider,
    pub reason: EndReason,
}

/// What one frame did.
#[derive(Debug, Default, PartialEq)]
pub struct FrameOutcome {
    pub voiced: bool,
    pub cut: Option<Cut>,
}

#[derive(Debug)]
struct Open {
    start_ms: u64,
    /// End of the last voiced frame: a server-VAD utterance ends here, not
    /// after the hangover.
    last_voice_end_ms: u64,
    /// Start of the current run of silence, if the last frame was silent.
    silence_start_ms: Option<u64>,
    pcm: Vec<i16>,
    voiced_ms: u64,
    decided_by: Decider,
    /// Samples of the next frame that predate a device `start` (the frame
    /// straddles the boundary) and so are not part of this utterance.
    skip_samples: usize,
}

pub struct Segmenter {
    settings: SegmenterSettings,
    listen_mode: ListenMode,
    /// Audio time of the last `start`/`stop`: the manual fallback clock.
    last_boundary_ms: u64,
    /// Manual mode: `start` seen and no `stop` since.
    device_open: bool,
    current: Option<Open>,
    /// The last `pre_roll_frames` frames; capacity fixed at creation.
    pre_roll: VecDeque<i16>,
}

impl Segmenter {
    pub fn new(settings: SegmenterSettings, listen_mode: ListenMode) -> Self {
        let frame_samples = (FRAME_MS * SAMPLES_PER_MS) as usize;
        Segmenter {
            settings,
            listen_mode,
            last_boundary_ms: 0,
            device_open: false,
            current: None,
            pre_roll: VecDeque::with_capacity(settings.pre_roll_frames * frame_samples),
        }
    }

    pub fn listen_mode(&self) -> ListenMode {
        self.listen_mode
    }

    pub fn in_utterance(&self) -> bool {
        self.current.is_some()
    }

    /// Whether the server VAD decides at audio time `now_ms`.
    pub fn server_vad_decides(&self, now_ms: u64) -> bool {
        self.listen_mode != ListenMode::Manual
            || now_ms.saturating_sub(self.last_boundary_ms) >= self.settings.manual_fallback_ms
    }

    /// One VAD frame starting at audio time `start_ms`, with its speech probability.
    pub fn on_frame(&mut self, frame: &[i16], probability: f32, start_ms: u64) -> FrameOutcome {
        let end_ms = start_ms + FRAME_MS;
        let voiced = probability >= self.settings.threshold;
        let mut outcome = FrameOutcome { voiced, cut: None };
        let vad_decides = self.server_vad_decides(start_ms);
        match self.current.as_mut() {
            None if vad_decides && voiced => {
                let pre_roll_ms = (self.pre_roll.len() as u64) / SAMPLES_PER_MS;
                let mut pcm = Vec::with_capacity(16_000 * 10);
                pcm.extend(self.pre_roll.iter().copied());
                pcm.extend_from_slice(frame);
                self.current = Some(Open {
                    start_ms: start_ms.saturating_sub(pre_roll_ms),
                    last_voice_end_ms: end_ms,
                    silence_start_ms: None,
                    pcm,
                    voiced_ms: FRAME_MS,
                    decided_by: Decider::ServerVad,
                    skip_samples: 0,
                });
            }
            None => {}
            Some(open) => {
                let skip = open.skip_samples.min(frame.len());
                open.skip_samples = 0;
                open.pcm.extend_from_slice(&frame[skip..]);
                if voiced {
                    open.last_voice_end_ms = end_ms;
                    open.silence_start_ms = None;
                    open.voiced_ms += FRAME_MS;
                } else if vad_decides {
                    let silence_start_ms = *open.silence_start_ms.get_or_insert(start_ms);
                    let silence_ms = end_ms - silence_start_ms;
                    if silence_ms >= self.settings.min_silence_ms {
                        ::log::debug!("{silence_ms} ms of silence ends the utterance");
                        let end = open.last_voice_end_ms;
                        outcome.cut = self.close(end, EndReason::Silence);
                    }
                }
            }
        }
        self.remember(frame);
        outcome
    }

    /// A listen boundary at audio time `now_ms` (exact, in decoded samples).
    /// `pending` holds the samples decoded before the boundary that have not
    /// yet filled a VAD frame: they end a device-bracketed utterance.
    pub fn on_boundary(&mut self, boundary: Boundary, now_ms: u64, pending: &[i16]) -> Option<Cut> {
        self.last_boundary_ms = now_ms;
        if let Some(open) = self.current.as_mut()
            && open.decided_by == Decider::Device
        {
            let skip = open.skip_samples.min(pending.len());
            open.skip_samples -= skip;
            open.pcm.extend_from_slice(&pending[skip..]);
        }
        match boundary {
            Boundary::Start(mode) => {
                let cut = self.close_at_boundary(now_ms);
                self.listen_mode = mode;
                self.device_open = mode == ListenMode::Manual;
                if self.device_open {
                    self.current = Some(Open {
                        start_ms: now_ms,
                        last_voice_end_ms: now_ms,
                        silence_start_ms: None,
                        pcm: Vec::with_capacity(16_000 * 10),
                        voiced_ms: 0,
                        decided_by: Decider::Device,
                        skip_samples: pending.len(),
                    });
                }
                cut
            }
            Boundary::Stop => {
                self.device_open = false;
                self.close_at_boundary(now_ms)
            }
        }
    }

    /// The stream ended (the connection closed) at audio time `now_ms`.
    pub fn finish(&mut self, now_ms: u64) -> Option<Cut> {
        let cut = self.current.as_ref().map(|open| match open.decided_by {
            Decider::Device => now_ms,
            Decider::ServerVad => open.last_voice_end_ms,
        });
        cut.and_then(|end| self.close(end, EndReason::StreamEnd))
    }

    fn close_at_boundary(&mut self, now_ms: u64) -> Option<Cut> {
        let end = match self.current.as_ref()?.decided_by {
            Decider::Device => now_ms,
            Decider::ServerVad => self.current.as_ref()?.last_voice_end_ms,
        };
        self.close(end, EndReason::Boundary)
    }

    fn close(&mut self, end_ms: u64, reason: EndReason) -> Option<Cut> {
        let mut open = self.current.take()?;
        let length_ms = end_ms.saturating_sub(open.start_ms);
        if length_ms < self.settings.min_speech_ms {
            ::log::debug!("dropping {length_ms} ms of speech: shorter than min_speech_ms");
            return None;
        }
        open.pcm.truncate((length_ms * SAMPLES_PER_MS) as usize);
        Some(Cut {
            start_ms: open.start_ms,
            end_ms,
            pcm: open.pcm,
            voiced_ms: open.voiced_ms,
            listen_mode: self.listen_mode,
            decided_by: open.decided_by,
            reason,
        })
    }

    fn remember(&mut self, frame: &[i16]) {
        let capacity = self
            .pre_roll
            .capacity()
            .min(self.settings.pre_roll_frames * (FRAME_MS * SAMPLES_PER_MS) as usize);
        if capacity == 0 {
            return;
        }
        for sample in frame {
            if self.pre_roll.len() == capacity {
                self.pre_roll.pop_front();
            }
            self.pre_roll.push_back(*sample);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [i16; 256] = [0; 256];

    /// Feeds `pattern` (one char per 16 ms frame: `#` voice, `.` silence)
    /// starting at `start_ms`; returns the cuts and the next frame time.
    fn feed(seg: &mut Segmenter, pattern: &str, start_ms: u64) -> (Vec<Cut>, u64) {
        let mut cuts = Vec::new();
        let mut t = start_ms;
        for c in pattern.chars() {
            let p = if c == '#' { 0.9 } else { 0.1 };
            if let Some(cut) = seg.on_frame(&FRAME, p, t).cut {
                cuts.push(cut);
            }
            t += FRAME_MS;
        }
        (cuts, t)
    }

    fn settings() -> SegmenterSettings {
        SegmenterSettings {
            pre_roll_frames: 0,
            ..SegmenterSettings::default()
        }
    }

    #[test]
    fn server_vad_cuts_after_the_hangover_at_the_last_voiced_frame() {
        let mut seg = Segmenter::new(settings(), ListenMode::Auto);
        // 10 silent frames, 20 voiced (320 ms), then silence: 13 frames = 208 ms ≥ 200.
        let (cuts, _) = feed(
            &mut seg,
            &format!("{}{}{}", ".".repeat(10), "#".repeat(20), ".".repeat(13)),
            0,
        );
        assert_eq!(cuts.len(), 1);
        let cut = &cuts[0];
        assert_eq!((cut.start_ms, cut.end_ms), (160, 480));
        assert_eq!(cut.pcm.len(), 320 * 16);
        assert_eq!(cut.voiced_ms, 320);
        assert_eq!(cut.reason, EndReason::Silence);
        assert_eq!(cut.decided_by, Decider::ServerVad);
    }

    #[test]
    fn a_pause_shorter_than_the_hangover_does_not_split() {
        let mut seg = Segmenter::new(settings(), ListenMode::Auto);
        let (cuts, _) = feed(
            &mut seg,
            &format!(
                "{}{}{}{}",
                "#".repeat(15),
                ".".repeat(12),
                "#".repeat(15),
                ".".repeat(13)
            ),
            0,
        );
        assert_eq!(cuts.len(), 1);
        assert_eq!((cuts[0].start_ms, cuts[0].end_ms), (0, 42 * 16));
    }

    #[test]
    fn short_blips_are_dropped() {
        let mut seg = Segmenter::new(settings(), ListenMode::Auto);
        let (cuts, _) = feed(&mut seg, &format!("{}{}", "#".repeat(9), ".".repeat(20)), 0);
        assert!(cuts.is_empty(), "144 ms < 150 ms must be dropped");
    }

    #[test]
    fn pre_roll_moves_the_start_earlier() {
        let mut seg = Segmenter::new(SegmenterSettings::default(), ListenMode::Auto);
        let (cuts, _) = feed(
            &mut seg,
            &format!("{}{}{}", ".".repeat(10), "#".repeat(20), ".".repeat(13)),
            0,
        );
        assert_eq!(cuts[0].start_ms, 160 - 32);
        assert_eq!(cuts[0].pcm.len() as u64, (480 - 128) * 16);
    }

    #[test]
    fn manual_mode_follows_the_device_brackets() {
        let mut seg = Segmenter::new(settings(), ListenMode::Auto);
        assert!(
            seg.on_boundary(Boundary::Start(ListenMode::Manual), 0, &[])
                .is_none()
        );
        // Voice then silence longer than the hangover: still one bracketed utterance.
        let (cuts, t) = feed(
            &mut seg,
            &format!("{}{}{}", "#".repeat(20), ".".repeat(30), "#".repeat(10)),
            0,
        );
        assert!(cuts.is_empty());
        let cut = seg
            .on_boundary(Boundary::Stop, t, &[])
            .expect("bracketed utterance");
        assert_eq!((cut.start_ms, cut.end_ms), (0, t));
        assert_eq!(cut.decided_by, Decider::Device);
        assert_eq!(cut.voiced_ms, 30 * 16);
        // Between brackets (and before the fallback) audio is ignored.
        let (cuts, _) = feed(&mut seg, &"#".repeat(40), t);
        assert!(cuts.is_empty());
        assert!(!seg.in_utterance());
    }

    #[test]
    fn manual_fallback_starts_at_five_seconds_and_each_boundary_refreshes_it() {
        let mut seg = Segmenter::new(settings(), ListenMode::Manual);
        assert!(!seg.server_vad_decides(4_999));
        assert!(seg.server_vad_decides(5_000));
        // Voice before 5 s is ignored, voice after it is cut by the server VAD.
        let (cuts, t) = feed(&mut seg, &"#".repeat(330), 0);
        assert!(cuts.is_empty());
        assert!(seg.in_utterance(), "voice past 5 s opens an utterance");
        let (cuts, t) = feed(&mut seg, &".".repeat(13), t);
        assert_eq!(cuts.len(), 1);
        // The first frame starting at or after 5 s starts at 5008 ms.
        assert_eq!((cuts[0].start_ms, cuts[0].end_ms), (5_008, 5_280));
        assert_eq!(cuts[0].decided_by, Decider::ServerVad);
        // A boundary refreshes the clock: the VAD hands back to the device.
        let stop_at = t;
        assert!(seg.on_boundary(Boundary::Stop, stop_at, &[]).is_none());
        assert!(!seg.server_vad_decides(stop_at + 4_999));
        assert!(seg.server_vad_decides(stop_at + 5_000));
    }

    #[test]
    fn device_brackets_are_exact_to_the_sample() {
        let mut seg = Segmenter::new(settings(), ListenMode::Manual);
        // Start 6 ms (96 samples) into a frame: those 96 are not the utterance's.
        assert!(
            seg.on_boundary(Boundary::Start(ListenMode::Manual), 6, &[1; 96])
                .is_none()
        );
        let (_, t) = feed(&mut seg, &"#".repeat(20), 0);
        let cut = seg
            .on_boundary(Boundary::Stop, t + 10, &[2; 160])
            .expect("bracket");
        assert_eq!((cut.start_ms, cut.end_ms), (6, t + 10));
        assert_eq!(cut.pcm.len() as u64, (t + 10 - 6) * 16);
        assert_eq!(cut.pcm.last(), Some(&2));
    }

    #[test]
    fn stop_in_auto_mode_ends_the_utterance_at_the_last_voice() {
        let mut seg = Segmenter::new(settings(), ListenMode::Auto);
        let (_, t) = feed(&mut seg, &format!("{}{}", "#".repeat(20), ".".repeat(3)), 0);
        let cut = seg.on_boundary(Boundary::Stop, t, &[]).expect("flushed");
        assert_eq!((cut.end_ms, cut.reason), (320, EndReason::Boundary));
    }

    #[test]
    fn finish_delivers_the_utterance_in_progress() {
        let mut seg = Segmenter::new(settings(), ListenMode::Auto);
        let (_, t) = feed(&mut seg, &"#".repeat(20), 0);
        let cut = seg.finish(t).expect("in progress");
        assert_eq!((cut.end_ms, cut.reason), (320, EndReason::StreamEnd));
    }
}
