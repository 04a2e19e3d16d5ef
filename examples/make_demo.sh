#!/usr/bin/env bash
# Generate examples/demo.mp4: a 60-s synthetic video made only with ffmpeg's lavfi
# sources (so it is ours to license: CC0). Calm stretches (a dim, slowly drifting
# gradient with quiet pink noise: "nothing happens") surround two "events" (a
# colourful test-card sweep with a loud beeping tone at 18-26 s, a Game-of-Life burst
# with loud tremolo noise at 40-46 s), so a highlight detector has something to find.
# Every random source has a fixed seed: the same file on every machine (lavfi's
# default seed is random, and a new demo each time made tests that read it vary).
set -euo pipefail
out="${1:-$(dirname "$0")/demo.mp4}"
[ -s "$out" ] && [ -z "${FORCE:-}" ] && { echo "$out exists (FORCE=1 to rebuild)"; exit 0; }
tmp="${out%.mp4}.part.mp4"
S=480x270
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -t 18 -i "gradients=s=$S:r=25:speed=0.01:seed=11:c0=0x202830:c1=0x303c44" \
  -f lavfi -i "testsrc2=s=$S:r=25:d=8" \
  -f lavfi -t 14 -i "gradients=s=$S:r=25:speed=0.01:seed=12:c0=0x283038:c1=0x202830" \
  -f lavfi -t 6 -i "life=s=$S:r=25:seed=7:mold=10:ratio=0.3:death_color=#203040:life_color=#ffcc00" \
  -f lavfi -t 14 -i "gradients=s=$S:r=25:speed=0.01:seed=13:c0=0x283038:c1=0x202830" \
  -f lavfi -i "anoisesrc=c=pink:a=0.02:r=44100:d=18:seed=1" \
  -f lavfi -i "sine=f=220:beep_factor=4:r=44100:d=8,volume=6" \
  -f lavfi -i "anoisesrc=c=pink:a=0.02:r=44100:d=14:seed=2" \
  -f lavfi -i "anoisesrc=c=white:a=0.5:r=44100:d=6:seed=3,tremolo=f=4:d=0.9" \
  -f lavfi -i "anoisesrc=c=pink:a=0.02:r=44100:d=14:seed=4" \
  -filter_complex "[0:v][5:a][1:v][6:a][2:v][7:a][3:v][8:a][4:v][9:a]concat=n=5:v=1:a=1[v][a]" \
  -map "[v]" -map "[a]" -c:v libx264 -preset veryfast -crf 34 -pix_fmt yuv420p \
  -c:a aac -b:a 64k -ac 1 -movflags +faststart "$tmp"
mv -f "$tmp" "$out"
echo "wrote $out"
