//! `--progress tty`: a live display like BuildKit's on a terminal.
//!
//! ```text
//! [+] Building 3.2s (4/6)
//!  => CACHED [1/4] FROM base                                  0.0s
//!  => [2/4] COPY src /src                                      0.1s
//!  => [3/4] RUN make                                           2.9s
//!  => => cc -o app main.c
//! ```
//! Running steps show their elapsed time and the last lines of their
//! output; finished steps stay listed with their duration.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_solver::{ProgressEvent, VertexId};

use super::{Lines, Render};

/// Output lines shown under a running step.
const TAIL_LINES: usize = 6;

struct Step {
    bar: ProgressBar,
    tail_bar: Option<ProgressBar>,
    tail: Vec<String>,
    name: String,
    started: Instant,
}

pub(crate) struct Tty {
    multi: MultiProgress,
    header: ProgressBar,
    steps: HashMap<VertexId, Step>,
    lines: Lines,
    done: usize,
    width: usize,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Tty {
    pub(crate) fn new() -> Tty {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let header = multi.add(ProgressBar::new_spinner());
        header.set_style(style("[+] Building {elapsed_precise:.bold} {msg}"));
        header.enable_steady_tick(Duration::from_millis(100));
        let width = terminal_width();
        Tty {
            multi,
            header,
            steps: HashMap::new(),
            lines: Lines::default(),
            done: 0,
            width,
        }
    }

    fn update_header(&self) {
        self.header
            .set_message(format!("({}/{})", self.done, self.steps.len()));
    }
}

/// ` => NAME            1.2s`, fitted to `width` columns.
fn step_line(width: usize, prefix: &str, name: &str, secs: f64) -> String {
    {
        let right = format!("{secs:.1}s");
        let room = width.saturating_sub(prefix.len() + right.len() + 2);
        let name: String = if name.chars().count() > room {
            name.chars()
                .take(room.saturating_sub(1))
                .collect::<String>()
                + "…"
        } else {
            name.to_string()
        };
        let pad = room.saturating_sub(name.chars().count());
        format!("{prefix}{name}{} {right}", " ".repeat(pad))
    }
}

impl Tty {
    fn step(&mut self, v: VertexId, name: &str) -> &mut Step {
        if !self.steps.contains_key(&v) {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(style(" => {msg} {elapsed:>.dim}"));
            bar.set_message(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            self.steps.insert(
                v,
                Step {
                    bar,
                    tail_bar: None,
                    tail: Vec::new(),
                    name: name.to_string(),
                    started: Instant::now(),
                },
            );
        }
        self.steps.get_mut(&v).expect("just inserted")
    }

    fn finish_step(&mut self, v: VertexId, prefix: &str) {
        let width = self.width;
        if let Some(step) = self.steps.get_mut(&v) {
            if let Some(t) = step.tail_bar.take() {
                t.finish_and_clear();
                self.multi.remove(&t);
            }
            let secs = step.started.elapsed().as_secs_f64();
            let name = step.name.clone();
            let bar = step.bar.clone();
            let tty = step_line(width, prefix, &name, secs);
            bar.set_style(style("{msg}"));
            bar.finish_with_message(tty);
        }
        self.done += 1;
        self.update_header();
    }
}

fn terminal_width() -> usize {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we pass; fd 2 may
    // not be a terminal, in which case the call fails and we use 80.
    let ok = unsafe { nix::libc::ioctl(2, nix::libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 20 {
        ws.ws_col as usize
    } else {
        80
    }
}

impl Render for Tty {
    fn event(&mut self, ev: &ProgressEvent) {
        match ev {
            ProgressEvent::Started { vertex, name, .. } => {
                self.step(*vertex, name);
                self.update_header();
            }
            ProgressEvent::Cached { vertex, name, .. } => {
                self.step(*vertex, name);
                self.finish_step(*vertex, " => CACHED ");
            }
            ProgressEvent::Log { vertex, data, .. } => {
                let lines = self.lines.push(*vertex, data);
                if lines.is_empty() {
                    return;
                }
                let multi = self.multi.clone();
                let width = self.width;
                let step = self.step(*vertex, "");
                step.tail.extend(lines);
                let excess = step.tail.len().saturating_sub(TAIL_LINES);
                step.tail.drain(..excess);
                if step.tail_bar.is_none() {
                    let t = multi.insert_after(&step.bar, ProgressBar::new_spinner());
                    t.set_style(style("{msg:.dim}"));
                    step.tail_bar = Some(t);
                }
                let msg = step
                    .tail
                    .iter()
                    .map(|l| {
                        let l: String = l.chars().take(width.saturating_sub(8)).collect();
                        format!(" => => {l}")
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Some(t) = &step.tail_bar {
                    t.set_message(msg);
                }
            }
            ProgressEvent::Status { vertex, text, .. } => {
                let step = self.step(*vertex, "");
                let name = format!("{} — {text}", step.name);
                step.bar.set_message(name);
            }
            ProgressEvent::Completed { vertex, .. } => {
                let _ = self.lines.flush(*vertex);
                self.finish_step(*vertex, " => ");
            }
            ProgressEvent::Failed { vertex, error, .. } => {
                let _ = self.lines.flush(*vertex);
                let prefix = if error == "cancelled" {
                    " => CANCELED "
                } else {
                    " => ERROR "
                };
                self.finish_step(*vertex, prefix);
            }
        }
    }

    fn finish(&mut self) {
        self.header
            .finish_with_message(format!("({}/{}) FINISHED", self.done, self.steps.len()));
        for step in self.steps.values() {
            if let Some(t) = &step.tail_bar {
                t.finish_and_clear();
            }
            if !step.bar.is_finished() {
                step.bar.abandon();
            }
        }
    }
}
