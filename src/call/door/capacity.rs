//! `limits.max_calls` as permits: a call takes one before it is answered
//! and holds it until it ends. The permit is released on drop, so a call
//! that ends in any way — a panic in its driver included — gives its
//! place back.

use crate::running::{Entered, Running};

/// The node's call places.
#[derive(Debug, Clone)]
pub struct Capacity {
    max: usize,
    taken: Running,
}

/// One place, held by one call.
pub type Permit = Entered;

impl Capacity {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            taken: Running::default(),
        }
    }

    /// A place, or None when all `max` are taken.
    pub fn try_acquire(&self) -> Option<Permit> {
        self.taken.try_enter(self.max)
    }

    /// A place even beyond `max`: for calls already up on the wire that a
    /// restart takes over (refusing them would drop them).
    pub fn acquire_anyway(&self) -> Permit {
        self.taken.enter()
    }

    /// Places taken now.
    pub fn in_use(&self) -> usize {
        self.taken.count()
    }

    /// The places, to wait until all are free.
    pub fn taken(&self) -> &Running {
        &self.taken
    }

    /// True while no place is free (`try_acquire` would fail).
    pub fn full(&self) -> bool {
        self.in_use() >= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::Capacity;

    #[test]
    fn never_more_than_max_and_drop_gives_back() {
        let c = Capacity::new(2);
        let a = c.try_acquire();
        let b = c.try_acquire();
        assert!(a.is_some() && b.is_some());
        assert!(c.try_acquire().is_none());
        drop(a);
        assert_eq!(c.in_use(), 1);
        assert!(c.try_acquire().is_some());
    }

    #[test]
    fn a_panicking_holder_gives_its_place_back() {
        let c = Capacity::new(1);
        let held = c.clone();
        let result = std::thread::spawn(move || {
            let _permit = held.try_acquire();
            panic!("driver bug");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(c.in_use(), 0);
    }
}
