#!/bin/sh
# Makes the G.722 reference vectors that src/media/g722.rs is tested
# against, offline, with FFmpeg's G.722 encoder and decoder (an
# implementation apart from the one pinless uses). Run from this folder:
# sh make.sh. Tool: ffmpeg 5.1 (Debian 12 package ffmpeg).
#
# input.s16le    1 s of 16 kHz mono 16-bit audio: a rising sweep in the
#                low sub-band (100 Hz to 2 kHz), a falling one in the high
#                sub-band (7 to 4 kHz), and a little noise; loud enough
#                in places to drive both ADPCM quantisers to their ends.
# encoded.g722   its G.722 at 64 kbit/s (one byte per two samples).
# decoded.s16le  encoded.g722 decoded back to 16 kHz samples.
set -eu

ffmpeg -hide_banner -loglevel error -y -f lavfi \
    -i "aevalsrc=exprs='0.45*sin(2*PI*(100+1900*t)*t)+0.25*sin(2*PI*(7000-3000*t)*t)+0.2*random(0)-0.1':s=16000:d=1" \
    -ac 1 -f s16le -acodec pcm_s16le input.s16le
ffmpeg -hide_banner -loglevel error -y -f s16le -ar 16000 -ac 1 -i input.s16le \
    -c:a g722 -f g722 encoded.g722
ffmpeg -hide_banner -loglevel error -y -f g722 -i encoded.g722 \
    -f s16le -acodec pcm_s16le decoded.s16le
