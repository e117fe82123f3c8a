//! Voice activity detection behind a small trait, so a second engine can sit
//! beside the default. The default is `earshot`: pure Rust, 16 ms frames,
//! about 7 µs per frame (see `benches/vad.rs`).

/// A frame-by-frame speech detector for 16 kHz mono audio.
pub trait Vad: Send {
    /// Samples per frame this engine needs.
    fn frame_samples(&self) -> usize;
    /// Speech probability of one frame of exactly [`Vad::frame_samples`] samples, in 0..=1.
    fn speech_probability(&mut self, frame: &[i16]) -> f32;
    /// Forgets all history (new stream, or after a decoder reset).
    fn reset(&mut self);
}

/// 256 samples = 16 ms at 16 kHz.
pub const EARSHOT_FRAME: usize = 256;

pub struct EarshotVad {
    /// Boxed: the detector's state is ~8 KB and streams are moved around.
    detector: Box<earshot::Detector>,
}

impl EarshotVad {
    pub fn new() -> Self {
        EarshotVad {
            detector: Box::default(),
        }
    }
}

impl Default for EarshotVad {
    fn default() -> Self {
        Self::new()
    }
}

impl Vad for EarshotVad {
    fn frame_samples(&self) -> usize {
        EARSHOT_FRAME
    }

    fn speech_probability(&mut self, frame: &[i16]) -> f32 {
        // earshot answers -1 (release) or asserts (debug) on a wrong length;
        // refuse here instead so both builds behave alike.
        if frame.len() != EARSHOT_FRAME {
            return 0.0;
        }
        self.detector.predict_i16(frame).clamp(0.0, 1.0)
    }

    fn reset(&mut self) {
        self.detector.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_not_speech_and_wrong_lengths_are_refused() {
        let mut vad = EarshotVad::new();
        let silence = [0i16; EARSHOT_FRAME];
        for _ in 0..20 {
            assert!(vad.speech_probability(&silence) < 0.5);
        }
        assert_eq!(vad.speech_probability(&[1000i16; 100]), 0.0);
    }
}
