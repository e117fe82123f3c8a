#!/usr/bin/env python3
"""Builds assets/tts_notify.mp3, the "your turn" chime huddle plays before `tts stop`
when `chat.enable_stop_tts_notify` is on and no file is at the configured default path.

Two decaying sine notes (a rising fifth, 660 Hz then 990 Hz) at 22050 Hz mono, so
the server's MP3 decoding and resampling to 16 kHz both have work to do, encoded
with LAME at 64 kb/s. Needs `pip install lameenc`; the output is committed, so this
runs only when the chime should change.

    python3 tools/make_notify_sound.py [OUTPUT]
"""

import array
import math
import sys

import lameenc

RATE = 22050
NOTES = [(660.0, 0.09), (990.0, 0.16)]  # (Hz, seconds)
PEAK = 0.45  # of full scale: audible on a badge speaker without clipping after Opus
FADE_IN_S = 0.004  # no click at each note's start


def chime() -> array.array:
    samples = array.array("h")
    for freq, seconds in NOTES:
        n = int(RATE * seconds)
        for i in range(n):
            t = i / RATE
            envelope = min(1.0, t / FADE_IN_S) * math.exp(-t * 18.0)
            value = PEAK * envelope * math.sin(2 * math.pi * freq * t)
            samples.append(int(value * 32767))
    samples.extend([0] * int(RATE * 0.03))  # a short tail of silence
    return samples


def main() -> None:
    output = sys.argv[1] if len(sys.argv) > 1 else "assets/tts_notify.mp3"
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(64)
    encoder.set_in_sample_rate(RATE)
    encoder.set_channels(1)
    encoder.set_quality(2)
    pcm = chime()
    mp3 = encoder.encode(pcm.tobytes()) + encoder.flush()
    with open(output, "wb") as f:
        f.write(mp3)
    print(f"{output}: {len(pcm) / RATE * 1000:.0f} ms, {len(mp3)} bytes")


if __name__ == "__main__":
    main()
