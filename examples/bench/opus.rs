//! `relay --opus`: what Opus costs per relayed packet. The same gateway
//! (codecs PCMU, PCMA, opus) is measured three times in one run on the
//! same load shape, every call bridged with audio both ways:
//!
//! - PCMU caller, PCMU room: the baseline, relayed untouched;
//! - Opus caller, Opus room: relayed untouched too (only the payload type
//!   is mapped), so it should cost what the baseline costs;
//! - Opus caller, PCMU room: transcoded both ways (libopus decodes the
//!   caller's Opus to 8 kHz for μ-law, and encodes the room's μ-law).
//!
//! The load's Opus is one real 20 ms frame (32 kbit/s wideband) sent on
//! the 48 kHz clock; calls are the bench's own over TLS, as in
//! `relay --srtp` (srtp.rs), whose runner this reuses.

use crate::srtp::{Measured, Variant, cert, relay_variants};
use crate::{Args, row};
use pinless::codec::AudioCodec;
use std::path::Path;

pub fn relay(args: &Args, dir: &Path) -> Result<(), String> {
    let cert = cert(dir)?;
    let (a, b) = (crate::relay::receiver()?, crate::relay::receiver()?);
    let opus = |room| Variant {
        srtp: false,
        caller: AudioCodec::Opus,
        room,
    };
    let variants = [
        Variant::PLAIN,
        opus(AudioCodec::Opus),
        opus(AudioCodec::Pcmu),
    ];
    let runs = relay_variants(args, dir, &cert, &a, &b, &variants)?;
    let [plain, relayed, transcoded] = &runs[..] else {
        return Err("a run is missing".into());
    };
    println!(
        "\nrelay --opus: {} bridged calls, audio both ways ({} streams at 50 packets/s) \
         for {} s, each run; server pinned to cores {}\n",
        args.calls,
        args.calls * 2,
        args.secs,
        args.shards.cores
    );
    let expected = f64::from(args.calls) * 2.0 * 50.0 * args.secs as f64;
    for (name, run) in [("Opus↔Opus", relayed), ("Opus↔PCMU", transcoded)] {
        println!("\n{name} against PCMU↔PCMU (baseline):\n");
        println!("| metric | {name} | PCMU↔PCMU | ratio |");
        println!("|---|---|---|---|");
        rows(run, plain, expected);
    }
    Ok(())
}

fn rows(run: &Measured, base: &Measured, expected: f64) {
    row(
        "CPU per packet",
        run.us_per_packet(),
        base.us_per_packet(),
        "µs",
    );
    row("CPU", run.cpu_pct, base.cpu_pct, "% core");
    row(
        "packets received (of those sent)",
        run.stats.packets as f64 / expected * 100.0,
        base.stats.packets as f64 / expected * 100.0,
        "%",
    );
    row(
        "packets lost (sequence gaps)",
        run.stats.lost as f64,
        base.stats.lost as f64,
        "",
    );
}
