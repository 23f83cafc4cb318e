#!/bin/sh
# Makes the bundled English prompt set offline: espeak-ng speaks each
# phrase, sox turns it into 8 kHz mono 16-bit WAV (what a G.711 call
# carries; the gateway would resample anything else, but small files are
# the point). Run from this folder: sh make.sh
# Tools: espeak-ng 1.51, sox 14.4 (Debian packages espeak-ng, sox).
set -eu

VOICE="en-us"   # espeak-ng voice
SPEED=150       # words per minute (slower than the default 175, for phones)

say() { # say FILE "TEXT"
    espeak-ng -v "$VOICE" -s "$SPEED" -w "$1.tmp.wav" "$2"
    # Mono, 8 kHz, 16-bit; trim the leading and trailing silence espeak
    # leaves, keep 80 ms at the end so words do not run into each other.
    sox "$1.tmp.wav" -r 8000 -c 1 -b 16 "$1.wav" \
        silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse pad 0 0.08
    rm -f "$1.tmp.wav"
}

say caller_number "You are caller number"
say estimated_wait "Your estimated wait is"
say less_than_a_minute "less than one minute"
say about "about"
say minute "minute"
say minutes "minutes"
say more_than "more than"
say thank_you "Thank you for waiting."

set -- one two three four five six seven eight nine ten eleven twelve \
    thirteen fourteen fifteen sixteen seventeen eighteen nineteen
n=1
for word in "$@"; do
    say "n$n" "$word"
    n=$((n + 1))
done
for tens in 20:twenty 30:thirty 40:forty 50:fifty 60:sixty 70:seventy 80:eighty 90:ninety; do
    say "n${tens%%:*}" "${tens#*:}"
done
