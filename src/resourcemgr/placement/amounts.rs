//! Per-dimension amounts (thousandths, one entry per resource dimension of [`Dims`]): a
//! vector kept inline for the usual handful of dimensions, so that compiling a request and
//! building a bin allocate nothing for them (a round of 10,000 requests made ~50,000 small
//! `Vec<i64>` allocations before).
//!
//! [`Dims`]: super::bins::Dims

use std::ops::{Deref, DerefMut};

/// Entries held without a heap allocation: `cpus`, `mem`, `disk`, `gpus` and four custom
/// resources (or two tasks' worth of the four usual ones).
const INLINE: usize = 8;

/// A vector of amounts; see the module doc. Dereferences to `[i64]`.
#[derive(Clone)]
pub(crate) enum Amounts {
    /// Up to [`INLINE`] entries.
    Inline { len: usize, items: [i64; INLINE] },
    /// More.
    Heap(Vec<i64>),
}

impl Amounts {
    /// `n` zeros.
    pub(crate) fn zeros(n: usize) -> Self {
        Self::filled(n, 0)
    }

    /// `n` entries of `value`.
    pub(crate) fn filled(n: usize, value: i64) -> Self {
        if n <= INLINE {
            Amounts::Inline {
                len: n,
                items: [value; INLINE],
            }
        } else {
            Amounts::Heap(vec![value; n])
        }
    }
}

impl Deref for Amounts {
    type Target = [i64];

    fn deref(&self) -> &[i64] {
        match self {
            Amounts::Inline { len, items } => &items[..*len],
            Amounts::Heap(v) => v,
        }
    }
}

impl DerefMut for Amounts {
    fn deref_mut(&mut self) -> &mut [i64] {
        match self {
            Amounts::Inline { len, items } => &mut items[..*len],
            Amounts::Heap(v) => v,
        }
    }
}

impl<'a> IntoIterator for &'a Amounts {
    type Item = &'a i64;
    type IntoIter = std::slice::Iter<'a, i64>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::fmt::Debug for Amounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_behave_alike() {
        for n in [0, 3, INLINE, INLINE + 1, 20] {
            let mut a = Amounts::zeros(n);
            assert_eq!(a.len(), n);
            assert!(a.iter().all(|v| *v == 0));
            for (i, v) in a.iter_mut().enumerate() {
                *v = i as i64;
            }
            let b = a.clone();
            assert_eq!(&*b, (0..n as i64).collect::<Vec<_>>().as_slice());
            assert_eq!(matches!(a, Amounts::Heap(_)), n > INLINE);
        }
        assert_eq!(&*Amounts::filled(2, -1), &[-1, -1]);
        assert_eq!(format!("{:?}", Amounts::filled(2, 5)), "[5, 5]");
    }
}
