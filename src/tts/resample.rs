//! Sample-rate conversion of synthesized speech to the protocol's 16 kHz (PROTOCOL.md §2.4): a band-limited
//! windowed-sinc (Kaiser) resampler, run once per sentence on the whole buffer.
//!
//! Engines answer at whatever rate they like (espeak-ng 22050 Hz, OpenAI-compatible services 24000 Hz, others
//! 44100 or 48000 Hz). Dropping or repeating samples would alias everything above 8 kHz back into the speech band
//! as a metallic hiss, so the signal is low-pass filtered at the lower of the two Nyquist frequencies while it is
//! interpolated.

/// Zero crossings of the sinc on each side of the centre. 24 gives a transition band of about 1.5 kHz at 16 kHz
/// output with ~80 dB of stopband, for ~150 taps per output sample when downsampling from 44.1 kHz.
const ZERO_CROSSINGS: f64 = 24.0;

/// The cutoff sits at this fraction of the lower Nyquist frequency so that the transition band ends near Nyquist
/// instead of straddling it (speech above ~6.5 kHz carries little intelligibility, aliasing is audible).
const ROLLOFF: f64 = 0.9;

/// Kaiser β for ~80 dB of stopband attenuation.
const KAISER_BETA: f64 = 8.0;

/// Above this many distinct filter phases the taps are computed per output sample instead of tabulated, so an odd
/// rate pair (44101 → 16000) costs time rather than megabytes.
const MAX_TABLE_PHASES: u64 = 2048;

use super::engine::SAMPLE_RATE;

/// Converts `pcm` at `from` Hz to 16 kHz; a copy when the rates are equal.
pub fn to_16k(pcm: &[i16], from: u32) -> Vec<i16> {
    resample(pcm, from, SAMPLE_RATE)
}

/// Converts `pcm` from `from` Hz to `to` Hz. The output has `round(len · to / from)` samples and no delay: sample
/// `n` of the output is the input signal at time `n / to`. Rates of 0 give an empty result.
pub fn resample(pcm: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to {
        return pcm.to_vec();
    }
    if from == 0 || to == 0 || pcm.is_empty() {
        return Vec::new();
    }
    let out_len =
        ((pcm.len() as u64 * u64::from(to) + u64::from(from) / 2) / u64::from(from)) as usize;
    let filter = Filter::new(from, to);
    let input: Vec<f64> = pcm.iter().map(|&s| f64::from(s)).collect();
    (0..out_len)
        .map(|n| to_i16(filter.output(&input, n as u64)))
        .collect()
}

fn to_i16(v: f64) -> i16 {
    v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

/// The interpolation filter for one rate pair.
///
/// Output sample `n` sits at input position `n · step_num / step_den` (the reduced ratio `from / to`), so its
/// fractional part takes only `step_den` values: one row of taps per value, each normalized to unit gain so DC
/// passes unchanged whatever the phase.
struct Filter {
    step_num: u64,
    step_den: u64,
    /// Cutoff in cycles per input sample.
    cutoff: f64,
    /// Taps reach this many input samples either side of the centre.
    half_width: f64,
    /// First tap's offset from the integer part of the position (negative).
    first: i64,
    taps: usize,
    /// `step_den` rows of `taps` weights, or empty when there are too many phases to tabulate.
    table: Vec<f64>,
}

impl Filter {
    fn new(from: u32, to: u32) -> Self {
        let g = gcd(u64::from(from), u64::from(to));
        let (step_num, step_den) = (u64::from(from) / g, u64::from(to) / g);
        let cutoff = ROLLOFF * 0.5 * f64::from(from.min(to)) / f64::from(from);
        let half_width = ZERO_CROSSINGS / (2.0 * cutoff);
        let first = -(half_width.floor() as i64);
        let taps = (2 * half_width.floor() as usize) + 2;
        let mut filter = Filter {
            step_num,
            step_den,
            cutoff,
            half_width,
            first,
            taps,
            table: Vec::new(),
        };
        if step_den <= MAX_TABLE_PHASES {
            let mut table = Vec::with_capacity(step_den as usize * taps);
            for phase in 0..step_den {
                let frac = phase as f64 / step_den as f64;
                table.extend(filter.row(frac));
            }
            filter.table = table;
        }
        filter
    }

    /// Weights of input samples `floor(pos) + first + k` for a position whose fractional part is `frac`.
    fn row(&self, frac: f64) -> Vec<f64> {
        let mut row: Vec<f64> = (0..self.taps)
            .map(|k| self.kernel((self.first + k as i64) as f64 - frac))
            .collect();
        let sum: f64 = row.iter().sum();
        if sum.abs() > f64::EPSILON {
            row.iter_mut().for_each(|w| *w /= sum);
        }
        row
    }

    /// The Kaiser-windowed low-pass impulse response at `x` input samples from the centre.
    fn kernel(&self, x: f64) -> f64 {
        let r = x / self.half_width;
        if r.abs() >= 1.0 {
            return 0.0;
        }
        let window = bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / bessel_i0(KAISER_BETA);
        2.0 * self.cutoff * sinc(2.0 * self.cutoff * x) * window
    }

    fn output(&self, input: &[f64], n: u64) -> f64 {
        let scaled = n * self.step_num;
        let base = (scaled / self.step_den) as i64;
        let phase = scaled % self.step_den;
        let start = base + self.first;
        let owned;
        let row: &[f64] = if self.table.is_empty() {
            owned = self.row(phase as f64 / self.step_den as f64);
            &owned
        } else {
            let at = phase as usize * self.taps;
            &self.table[at..at + self.taps]
        };
        // Samples outside the input count as silence.
        let mut acc = 0.0;
        for (k, w) in row.iter().enumerate() {
            let i = start + k as i64;
            if i >= 0
                && let Some(s) = input.get(i as usize)
            {
                acc += w * s;
            }
        }
        acc
    }
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Modified Bessel function of the first kind, order 0 (power series; converges fast for the β used here).
fn bessel_i0(x: f64) -> f64 {
    let half = x / 2.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..64 {
        let f = half / k as f64;
        term *= f * f;
        sum += term;
        if term < sum * 1e-15 {
            break;
        }
    }
    sum
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, seconds: f64, amplitude: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amplitude * (std::f64::consts::TAU * freq * t).sin()) as i16
            })
            .collect()
    }

    fn rms(pcm: &[i16]) -> f64 {
        (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
    }

    /// Sign changes, ignoring the filter's edge transients.
    fn zero_crossings(pcm: &[i16]) -> usize {
        pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    #[test]
    fn equal_rates_pass_through() {
        let pcm = tone(440.0, 16_000, 0.1, 8000.0);
        assert_eq!(to_16k(&pcm, 16_000), pcm);
    }

    #[test]
    fn degenerate_inputs_give_empty_output() {
        assert!(resample(&[], 22_050, 16_000).is_empty());
        assert!(resample(&[1, 2, 3], 0, 16_000).is_empty());
        assert!(resample(&[1, 2, 3], 22_050, 0).is_empty());
    }

    #[test]
    fn a_440_hz_tone_keeps_its_pitch_and_duration() {
        let input = tone(440.0, 22_050, 1.0, 10_000.0);
        let out = to_16k(&input, 22_050);
        assert_eq!(out.len(), 16_000);
        // 440 Hz for one second: 880 sign changes.
        let crossings = zero_crossings(&out);
        assert!((875..=885).contains(&crossings), "{crossings} crossings");
        // Passband gain ~1 away from the edges.
        let level = rms(&out[1000..15_000]) / rms(&input[1500..20_500]);
        assert!((0.97..1.03).contains(&level), "gain {level}");
    }

    #[test]
    fn upsampling_keeps_pitch_and_length() {
        let input = tone(300.0, 8_000, 0.5, 10_000.0);
        let out = to_16k(&input, 8_000);
        assert_eq!(out.len(), 8_000);
        let crossings = zero_crossings(&out);
        assert!((297..=303).contains(&crossings), "{crossings} crossings");
    }

    #[test]
    fn tones_above_the_new_nyquist_do_not_alias() {
        let input = tone(10_000.0, 44_100, 1.0, 20_000.0);
        let out = to_16k(&input, 44_100);
        assert_eq!(out.len(), 16_000);
        // Naive decimation would put a full-level 6 kHz alias here; away from the edges the filter leaves
        // less than -60 dB of it.
        let ratio = rms(&out[500..15_500]) / rms(&input);
        assert!(ratio < 1e-3, "alias at {ratio}");
    }

    #[test]
    fn common_rates_round_trip_their_lengths() {
        for rate in [
            8_000, 11_025, 22_050, 24_000, 32_000, 44_100, 48_000, 44_101,
        ] {
            let input = tone(200.0, rate, 0.25, 5000.0);
            let out = to_16k(&input, rate);
            let expected = (input.len() as f64 * 16_000.0 / f64::from(rate)).round() as usize;
            assert_eq!(out.len(), expected, "{rate} Hz");
            let level = rms(&out[400..out.len() - 400]) / rms(&input);
            assert!((0.95..1.05).contains(&level), "{rate} Hz gain {level}");
        }
    }

    #[test]
    fn dc_and_full_scale_survive_without_overflow() {
        let out = to_16k(&vec![i16::MAX; 4410], 44_100);
        assert!(out[100..1500].iter().all(|&s| s >= i16::MAX - 2));
        let out = to_16k(&vec![i16::MIN; 4410], 44_100);
        assert!(out[100..1500].iter().all(|&s| s <= i16::MIN + 2));
    }
}
