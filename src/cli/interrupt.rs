//! Ctrl-C and SIGTERM in the middle of a long write: while a [`Catching`] lives, either
//! signal only sets a flag, which the writer reads between its atomic batches, so that
//! it stops at a batch's end and can say how far it got; a second one stops the process
//! at once. A signal ignored when it starts (a background job) stays ignored. Dropping
//! it restores what the signals did before (stop the process).

use std::sync::atomic::{AtomicI32, Ordering};

/// The last stop signal caught, 0 for none.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn catch(signal: libc::c_int) {
    // Only an atomic store: all a signal handler may safely do here.
    CAUGHT.store(signal, Ordering::SeqCst);
}

const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// Stop signals turned into a flag, until dropped.
pub struct Catching {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Catching {
    pub fn start() -> Catching {
        CAUGHT.store(0, Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in SIGNALS {
            // SAFETY: plain sigaction calls with zeroed, then filled, structures; the
            // handler only stores to an atomic.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = catch as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut action.sa_mask);
                // A second signal stops the process at once: batches are atomic.
                action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) != 0 {
                    continue;
                }
                if old.sa_sigaction == libc::SIG_IGN {
                    // Ignored by whoever started us (a background job): left so.
                    libc::sigaction(signal, &old, std::ptr::null_mut());
                } else {
                    previous.push((signal, old));
                }
            }
        }
        Catching { previous }
    }

    /// The stop signal caught since [`Catching::start`], if one was.
    pub fn caught(&self) -> Option<libc::c_int> {
        match CAUGHT.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }
}

impl Drop for Catching {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: restores the action `sigaction` returned for this signal.
            unsafe {
                libc::sigaction(*signal, old, std::ptr::null_mut());
            }
        }
    }
}

/// A command stopped by Ctrl-C or SIGTERM: exit code 128 + the signal's number (130,
/// 143), as a shell reports a process the signal stopped.
/// `what` says how far it got.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}: {what}", if *.signal == libc::SIGINT { "Ctrl-C (SIGINT)" } else { "SIGTERM" })]
pub struct Interrupted {
    pub signal: libc::c_int,
    pub what: String,
}

impl Interrupted {
    /// Ends the process by the signal, once the message is out, so that a shell loop
    /// running imports stops as it would for any command the signal stopped; 128 + the
    /// signal's number if it does not end it (ignored).
    pub fn exit(&self) -> i32 {
        // SAFETY: the default action, then the signal to this process.
        unsafe {
            libc::signal(self.signal, libc::SIG_DFL);
            libc::raise(self.signal);
        }
        128 + self.signal
    }
}
