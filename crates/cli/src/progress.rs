//! An upload progress bar on stderr: chunks, MiB and MiB/s; redrawn in
//! place on a terminal, one line per 10 % otherwise (logs stay short).

use std::io::IsTerminal;
use std::time::Instant;

use suite::Progress;

const MIB: f64 = (1u64 << 20) as f64;

pub struct ProgressBar {
    label: &'static str,
    started: Instant,
    pub bytes: u64,
    interactive: bool,
    last_percent: u64,
}

impl ProgressBar {
    pub fn new(label: &'static str) -> ProgressBar {
        ProgressBar {
            label,
            started: Instant::now(),
            bytes: 0,
            interactive: std::io::stderr().is_terminal(),
            last_percent: u64::MAX,
        }
    }

    pub fn show(&mut self, p: Progress) {
        self.bytes = p.bytes_done;
        let percent = (p.chunks_done * 100)
            .checked_div(p.chunks_total)
            .unwrap_or(100);
        if !self.interactive
            && (percent / 10 == self.last_percent / 10 && p.chunks_done != p.chunks_total)
        {
            return;
        }
        self.last_percent = percent;
        let width = 30;
        let filled = (percent as usize * width / 100).min(width);
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let line = format!(
            "{} [{}{}] {:>3}% {}/{} chunks {:.1}/{:.1} MiB {:.2} MiB/s",
            self.label,
            "#".repeat(filled),
            "-".repeat(width - filled),
            percent,
            p.chunks_done,
            p.chunks_total,
            p.bytes_done as f64 / MIB,
            p.bytes_total as f64 / MIB,
            p.bytes_done as f64 / MIB / secs
        );
        if self.interactive {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
    }

    pub fn finish(&self) {
        if self.interactive {
            eprintln!();
        }
    }
}
