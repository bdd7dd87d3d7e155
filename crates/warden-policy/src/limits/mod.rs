//! Limits on what one evaluation's builtins may build, and a deadline that
//! long builtin loops check.
//!
//! regorus bounds evaluation with a cooperative timer (read between
//! instructions) and, on the compiled engine, an instruction count. Neither
//! reaches inside a builtin: `numbers.range(1, 1e9)` is one instruction that
//! reserves 24 GB before it builds anything, and a chain of rules doubling a
//! string with `concat` costs a handful of instructions. regorus's own
//! memory limits need its `allocator-memory-limits` feature, which installs
//! mimalloc as the whole process's global allocator and counts every
//! allocation of the process against one global ceiling; it would not stop
//! that reservation either. So the builtins that can build far more than
//! their arguments hold are replaced, on both engines, by guarded versions
//! ([`guards`]): each works out what the call would build before building
//! it and charges that to a budget of elements and string bytes shared by
//! every guarded call of one evaluation. Over the budget, or past the
//! evaluation's deadline, the call fails with a regorus `LimitError`, which
//! regorus never turns into `undefined`; the scope records which limit was
//! hit so the decision names it.

mod guards;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use regorus::LimitError;

pub(crate) use guards::{guard_engine, guard_program};

/// Default number of elements (array, set and object members) that all
/// guarded builtin calls of one evaluation may build together.
pub const DEFAULT_MAX_BUILTIN_ELEMENTS: usize = 1_000_000;

/// Default number of string bytes that all guarded builtin calls of one
/// evaluation may build together (16 MiB).
pub const DEFAULT_MAX_BUILTIN_BYTES: usize = 16 * 1024 * 1024;

/// The limits of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub max_elements: u64,
    pub max_bytes: u64,
    pub timeout: Duration,
}

impl Limits {
    pub(crate) fn new(max_elements: usize, max_bytes: usize, timeout: Duration) -> Self {
        Limits {
            max_elements: u64::try_from(max_elements).unwrap_or(u64::MAX),
            max_bytes: u64::try_from(max_bytes).unwrap_or(u64::MAX),
            timeout,
        }
    }

    fn defaults() -> Self {
        Self::new(
            DEFAULT_MAX_BUILTIN_ELEMENTS,
            DEFAULT_MAX_BUILTIN_BYTES,
            crate::DEFAULT_TIMEOUT,
        )
    }
}

/// Which limit a builtin call hit; its text is the decision's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// Too many elements.
    Elements {
        builtin: &'static str,
        wanted: u64,
        used: u64,
        limit: u64,
    },
    /// Too many string bytes.
    Bytes {
        builtin: &'static str,
        wanted: u64,
        used: u64,
        limit: u64,
    },
    /// The evaluation's deadline passed inside (or before) the call.
    Time {
        builtin: &'static str,
        limit: Duration,
    },
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let already = |f: &mut std::fmt::Formatter<'_>, used: u64| {
            if used > 0 {
                write!(f, "; {used} already built")
            } else {
                Ok(())
            }
        };
        match self {
            Exceeded::Elements {
                builtin,
                wanted,
                used,
                limit,
            } => {
                write!(
                    f,
                    "{builtin} would build {wanted} elements, over the builtin element limit of {limit} per evaluation"
                )?;
                already(f, *used)
            }
            Exceeded::Bytes {
                builtin,
                wanted,
                used,
                limit,
            } => {
                write!(
                    f,
                    "{builtin} would build {wanted} bytes of strings, over the builtin byte limit of {limit} per evaluation"
                )?;
                already(f, *used)
            }
            Exceeded::Time { builtin, limit } => write!(
                f,
                "evaluation ran over its time budget of {} ms (in {builtin})",
                limit.as_millis()
            ),
        }
    }
}

/// What one guarded call builds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cost {
    pub elements: u64,
    pub bytes: u64,
}

/// CPU time of the calling thread, where the platform has the clock.
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Some(Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        ))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How long an evaluation has run: the CPU time its thread spent since
/// it started, so a machine busy with other work does not turn a cheap
/// decision into a timeout; wall-clock time where there is no such clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopwatch {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Stopwatch {
    pub(crate) fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu_time(),
        }
    }

    /// Time spent by the evaluation (CPU time where known).
    pub(crate) fn spent(&self) -> Duration {
        match (self.cpu, thread_cpu_time()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => self.wall.elapsed(),
        }
    }

    /// Wall-clock time since the start (for waits, which take no CPU).
    pub(crate) fn wall(&self) -> Duration {
        self.wall.elapsed()
    }

    /// Whether the evaluation spent more than `limit`, as [`Self::spent`]
    /// counts it. A thread's CPU time cannot run ahead of the wall clock,
    /// so while the wall time is within `limit` the answer is no without
    /// reading the CPU clock (a system call: `clock_gettime` serves the
    /// thread's CPU clock from the kernel, not the vDSO).
    pub(crate) fn over(&self, limit: Duration) -> bool {
        self.wall.elapsed() > limit && self.spent() > limit
    }
}

/// regorus's own timer reads the wall clock; it is set to this multiple of
/// the budget, a backstop for a machine so loaded that CPU time and wall
/// time part ways. The budget proper is CPU time ([`Stopwatch`]), checked
/// by the guarded builtins and when the evaluation ends; the instruction
/// budget stops a runaway evaluation on the compiled engine first.
pub(crate) const WALL_BACKSTOP_FACTOR: u32 = 10;

/// The wall-clock limit given to regorus's timer for a budget of `timeout`.
pub(crate) fn wall_backstop(timeout: Duration) -> Duration {
    timeout.saturating_mul(WALL_BACKSTOP_FACTOR)
}

struct Budget {
    limits: Limits,
    started: Stopwatch,
    elements: u64,
    bytes: u64,
    exceeded: Option<Exceeded>,
}

impl Budget {
    fn new(limits: Limits, started: Stopwatch) -> Self {
        Budget {
            limits,
            started,
            elements: 0,
            bytes: 0,
            exceeded: None,
        }
    }

    fn over(&self, builtin: &'static str, cost: Cost) -> Option<Exceeded> {
        if self.elements.saturating_add(cost.elements) > self.limits.max_elements {
            return Some(Exceeded::Elements {
                builtin,
                wanted: cost.elements,
                used: self.elements,
                limit: self.limits.max_elements,
            });
        }
        if self.bytes.saturating_add(cost.bytes) > self.limits.max_bytes {
            return Some(Exceeded::Bytes {
                builtin,
                wanted: cost.bytes,
                used: self.bytes,
                limit: self.limits.max_bytes,
            });
        }
        None
    }

    fn late(&self, builtin: &'static str) -> Option<Exceeded> {
        self.started
            .over(self.limits.timeout)
            .then_some(Exceeded::Time {
                builtin,
                limit: self.limits.timeout,
            })
    }
}

thread_local! {
    /// The budget of the evaluation running on this thread. Both engines
    /// evaluate on the caller's thread, so this is the evaluation's own.
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// Puts the enclosing scope's budget back, also when evaluation unwinds.
struct Restore(Option<Budget>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        BUDGET.with(|slot| *slot.borrow_mut() = previous);
    }
}

/// Run one evaluation under `limits`, its time counted from `started`; also
/// returns the limit a guarded builtin hit, if any (the evaluation's own
/// result may hide it: an error inside `not` or a partial rule need not
/// reach the top).
pub(crate) fn scoped<R>(
    limits: Limits,
    started: Stopwatch,
    run: impl FnOnce() -> R,
) -> (R, Option<Exceeded>) {
    let previous = BUDGET.with(|slot| slot.borrow_mut().replace(Budget::new(limits, started)));
    let restore = Restore(previous);
    let result = run();
    let exceeded = BUDGET.with(|slot| {
        slot.borrow()
            .as_ref()
            .and_then(|budget| budget.exceeded.clone())
    });
    drop(restore);
    (result, exceeded)
}

/// Record `exceeded` in the current scope and turn it into the error regorus
/// propagates (a `LimitError` is never swallowed into `undefined`).
fn fail(budget: Option<&mut Budget>, exceeded: Exceeded) -> anyhow::Error {
    let error = match &exceeded {
        Exceeded::Elements {
            wanted,
            used,
            limit,
            ..
        }
        | Exceeded::Bytes {
            wanted,
            used,
            limit,
            ..
        } => LimitError::MemoryLimitExceeded {
            usage: used.saturating_add(*wanted),
            limit: *limit,
        },
        Exceeded::Time { limit, .. } => LimitError::TimeLimitExceeded {
            elapsed: budget
                .as_ref()
                .map_or(*limit, |budget| budget.started.spent()),
            limit: *limit,
        },
    };
    if let Some(budget) = budget
        && budget.exceeded.is_none()
    {
        budget.exceeded = Some(exceeded);
    }
    anyhow::Error::new(error)
}

/// Fail when the evaluation is past its deadline (or already over a limit).
pub(crate) fn check_time(builtin: &'static str) -> anyhow::Result<()> {
    BUDGET.with(|slot| {
        let mut slot = slot.borrow_mut();
        let Some(budget) = slot.as_mut() else {
            return Ok(());
        };
        if let Some(previous) = budget.exceeded.clone() {
            return Err(fail(Some(budget), previous));
        }
        match budget.late(builtin) {
            Some(exceeded) => Err(fail(Some(budget), exceeded)),
            None => Ok(()),
        }
    })
}

/// Time left before the evaluation's deadline; `None` outside a scope.
pub(crate) fn remaining_time() -> Option<Duration> {
    BUDGET.with(|slot| {
        slot.borrow().as_ref().map(|budget| {
            budget
                .limits
                .timeout
                .saturating_sub(budget.started.spent().max(budget.started.wall()))
        })
    })
}

/// Fail with a time error for `builtin` (it would sleep past the deadline).
pub(crate) fn fail_time(builtin: &'static str) -> anyhow::Error {
    BUDGET.with(|slot| {
        let mut slot = slot.borrow_mut();
        let limit = slot
            .as_ref()
            .map_or(crate::DEFAULT_TIMEOUT, |budget| budget.limits.timeout);
        fail(slot.as_mut(), Exceeded::Time { builtin, limit })
    })
}

/// Fail unless `cost` fits in what is left of the budget. Outside a scope
/// (never on a decision path) each call is held to the default limits alone.
pub(crate) fn reserve(builtin: &'static str, cost: Cost) -> anyhow::Result<()> {
    BUDGET.with(|slot| {
        let mut slot = slot.borrow_mut();
        match slot.as_mut() {
            Some(budget) => match budget.over(builtin, cost) {
                Some(exceeded) => Err(fail(Some(budget), exceeded)),
                None => Ok(()),
            },
            None => match Budget::new(Limits::defaults(), Stopwatch::start()).over(builtin, cost) {
                Some(exceeded) => Err(fail(None, exceeded)),
                None => Ok(()),
            },
        }
    })
}

/// Count what a call built against the budget.
pub(crate) fn charge(cost: Cost) {
    BUDGET.with(|slot| {
        if let Some(budget) = slot.borrow_mut().as_mut() {
            budget.elements = budget.elements.saturating_add(cost.elements);
            budget.bytes = budget.bytes.saturating_add(cost.bytes);
        }
    });
}

/// Elements and string bytes left in the current budget.
pub(crate) fn left() -> Cost {
    BUDGET.with(|slot| match slot.borrow().as_ref() {
        Some(budget) => Cost {
            elements: budget.limits.max_elements.saturating_sub(budget.elements),
            bytes: budget.limits.max_bytes.saturating_sub(budget.bytes),
        },
        None => {
            let limits = Limits::defaults();
            Cost {
                elements: limits.max_elements,
                bytes: limits.max_bytes,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn time_spent_waiting_does_not_count_against_the_budget() {
        // A thread that is not running (here: asleep; in production:
        // waiting for a core on a busy machine) spends no CPU time, so the
        // budget does not run out while it waits.
        let watch = Stopwatch::start();
        std::thread::sleep(Duration::from_millis(60));
        assert!(watch.wall() >= Duration::from_millis(60));
        assert!(
            watch.spent() < Duration::from_millis(30),
            "{:?}",
            watch.spent()
        );
    }

    /// Keep a core busy until `done` says so.
    fn work_until(watch: &Stopwatch, done: impl Fn(&Stopwatch) -> bool) {
        let mut x = 0u64;
        while !done(watch) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    #[test]
    fn time_spent_working_counts() {
        let watch = Stopwatch::start();
        work_until(&watch, |w| w.wall() >= Duration::from_millis(30));
        assert!(watch.spent() > Duration::ZERO);
    }

    #[cfg(unix)]
    #[test]
    fn over_counts_cpu_time_and_skips_the_cpu_clock_only_when_it_cannot_matter() {
        // Working: CPU time passes the small limit, not the large one.
        let watch = Stopwatch::start();
        work_until(&watch, |w| w.spent() >= Duration::from_millis(20));
        assert!(watch.over(Duration::from_millis(10)));
        assert!(!watch.over(Duration::from_secs(60)));
        // Waiting: the wall clock passes the limit but the CPU clock does
        // not, so the wall clock alone does not decide it.
        let watch = Stopwatch::start();
        std::thread::sleep(Duration::from_millis(60));
        assert!(watch.wall() > Duration::from_millis(30));
        assert!(!watch.over(Duration::from_millis(30)));
    }

    #[test]
    fn the_wall_backstop_is_a_multiple_of_the_budget() {
        assert_eq!(
            wall_backstop(Duration::from_millis(100)),
            Duration::from_secs(1)
        );
        assert_eq!(wall_backstop(Duration::MAX), Duration::MAX);
    }
}
