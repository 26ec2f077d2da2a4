//! Progress bars on stderr for the CLI's long work: bench runs and admin reads over many queues.
//! Drawn only when stderr is a terminal; otherwise hidden and free, so piped output, scripts and
//! tests see none of it. Lines printed to stdout while a bar is up go through [`println`] so the
//! bar is lifted and redrawn around them instead of torn.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a shown bar redraws itself, so its clock moves between updates.
const REDRAW_INTERVAL_MS: u64 = 200;

const STEPS_TEMPLATE: &str = "{msg} [{bar:32}] {pos}/{len} {elapsed_precise} (eta {eta})";
const TIMED_TEMPLATE: &str = "{msg} [{bar:32}] {pos}/{len} s";

/// A bar of `len` steps labelled `what`.
pub fn steps(len: u64, what: &str) -> ProgressBar {
    styled(len, what, STEPS_TEMPLATE)
}

/// A bar over a run of `total`, labelled `what`, to be moved with [`set_elapsed`].
pub fn timed(total: Duration, what: &str) -> ProgressBar {
    styled(total.as_secs().max(1), what, TIMED_TEMPLATE)
}

/// Moves a [`timed`] bar to `elapsed`.
pub fn set_elapsed(bar: &ProgressBar, elapsed: Duration) {
    bar.set_position(elapsed.as_secs().min(bar.length().unwrap_or(u64::MAX)));
}

/// Prints `line` to stdout, lifting `bar` meanwhile.
pub fn println(bar: &ProgressBar, line: impl std::fmt::Display) {
    bar.suspend(|| println!("{line}"));
}

fn styled(len: u64, what: &str, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(REDRAW_INTERVAL_MS));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_count_and_stop_at_their_length() {
        let bar = timed(Duration::from_secs(10), "run");
        set_elapsed(&bar, Duration::from_millis(3_500));
        assert_eq!(bar.position(), 3);
        set_elapsed(&bar, Duration::from_secs(60));
        assert_eq!(bar.position(), 10);
        let bar = steps(4, "cases");
        bar.inc(1);
        assert_eq!(bar.position(), 1);
        bar.finish_and_clear();
    }

    #[test]
    fn the_templates_parse() {
        for t in [STEPS_TEMPLATE, TIMED_TEMPLATE] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }
}
