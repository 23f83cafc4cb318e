#!/usr/bin/env python3
"""Synthesize pinless's bundled hold music: a calm, seamless 16-second loop.

Four soft pad chords (C, A minor, F, G), four seconds each, made of sine
partials under raised-cosine envelopes that overlap and wrap around the end
of the loop, so the last sample flows into the first with no click.
Standard library only; writes a 16 kHz mono 16-bit WAV to stdout's path
argument. Encode it with: flac --best -f -o hold.flac hold.wav
"""
import math
import struct
import sys
import wave

RATE = 16000
CHORD_SECS = 4.0
# MIDI note numbers of each chord (root doubled an octave below).
CHORDS = [
    [48, 60, 64, 67],  # C
    [45, 57, 60, 64],  # A minor
    [41, 57, 60, 65],  # F
    [43, 55, 59, 62],  # G
]
LOOP = int(RATE * CHORD_SECS * len(CHORDS))
FADE = 1.0  # seconds of cross-fade between chords


def freq(note):
    return 440.0 * 2 ** ((note - 69) / 12)


def envelope(t, start):
    """Raised-cosine window: fades in over FADE before start, out after the chord."""
    length = CHORD_SECS + FADE
    x = (t - (start - FADE / 2)) % (LOOP / RATE)
    if x >= length:
        return 0.0
    if x < FADE:
        return 0.5 - 0.5 * math.cos(math.pi * x / FADE)
    if x > length - FADE:
        return 0.5 - 0.5 * math.cos(math.pi * (length - x) / FADE)
    return 1.0


def main(path):
    samples = []
    for n in range(LOOP):
        t = n / RATE
        v = 0.0
        for i, chord in enumerate(CHORDS):
            e = envelope(t, i * CHORD_SECS)
            if e == 0.0:
                continue
            for k, note in enumerate(chord):
                f = freq(note)
                # Whole number of cycles per loop keeps the loop seamless.
                f = round(f * LOOP / RATE) * RATE / LOOP
                v += e * (0.5 if k == 0 else 0.33) * math.sin(2 * math.pi * f * t)
        # Slow swell, four cycles per loop.
        v *= 0.8 + 0.2 * math.sin(2 * math.pi * 4 * n / LOOP)
        samples.append(int(max(-1.0, min(1.0, v * 0.22)) * 32767))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "hold.wav")
