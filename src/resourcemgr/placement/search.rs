//! The first-fit search structure: a segment tree over the bins in a fixed order, each node
//! holding the largest free amount per dimension (and free port count) below it, so that "the
//! first bin from the left where this request fits" is found by a depth-first descent that
//! skips every subtree which cannot hold the request: `O(log m)` when the first candidate
//! passes, plus the candidates that fail the checks a maximum cannot see (constraints, fixed
//! ports, a resource free in one bin of the subtree and another resource in another).

/// See the module doc.
#[derive(Debug, Clone)]
pub(crate) struct MaxTree {
    leaves: usize,
    dims: usize,
    /// Node `i`'s maxima at `i * (dims + 1) ..`: the dimensions, then the port count.
    max: Vec<i64>,
}

impl MaxTree {
    /// A tree over `n` leaves of `dims` dimensions, all empty.
    pub(crate) fn new(n: usize, dims: usize) -> Self {
        let leaves = n.next_power_of_two().max(1);
        Self {
            leaves,
            dims,
            max: vec![-1; 2 * leaves * (dims + 1)],
        }
    }

    fn node(&self, i: usize) -> &[i64] {
        let w = self.dims + 1;
        &self.max[i * w..(i + 1) * w]
    }

    /// Sets leaf `pos` to `free` and `ports`, and the maxima above it.
    pub(crate) fn set(&mut self, pos: usize, free: &[i64], ports: u64) {
        let w = self.dims + 1;
        let mut i = self.leaves + pos;
        self.max[i * w..i * w + self.dims].copy_from_slice(&free[..self.dims]);
        self.max[i * w + self.dims] = i64::try_from(ports).unwrap_or(i64::MAX);
        while i > 1 {
            i /= 2;
            // The node's maxima from its two children; once a node is unchanged, so is every
            // node above it.
            let (head, tail) = self.max.split_at_mut(2 * i * w);
            let node = &mut head[i * w..(i + 1) * w];
            let (left, right) = tail[..2 * w].split_at(w);
            let mut changed = false;
            for ((m, l), r) in node.iter_mut().zip(left).zip(right) {
                let v = (*l).max(*r);
                changed |= *m != v;
                *m = v;
            }
            if !changed {
                break;
            }
        }
    }

    fn can_hold(&self, i: usize, demand: &[i64], ports: i64) -> bool {
        let n = self.node(i);
        n[self.dims] >= ports && demand.iter().zip(n).all(|(d, m)| m >= d)
    }

    /// Calls `visit` on the leaves that may hold `demand` and `ports`, left to right, until it
    /// returns true; returns whether it did.
    pub(crate) fn first(
        &self,
        demand: &[i64],
        ports: u64,
        visit: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        let ports = i64::try_from(ports).unwrap_or(i64::MAX);
        // Depth-first, left child first: the stack holds at most one right sibling per level
        // plus the node at hand, so a fixed array serves any tree (`leaves` < 2^64).
        let mut stack = [0usize; 130];
        stack[0] = 1;
        let mut len = 1;
        while len > 0 {
            len -= 1;
            let i = stack[len];
            if !self.can_hold(i, demand, ports) {
                continue;
            }
            if i >= self.leaves {
                if visit(i - self.leaves) {
                    return true;
                }
            } else {
                stack[len] = 2 * i + 1;
                stack[len + 1] = 2 * i;
                len += 2;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_leftmost_fit() {
        let mut t = MaxTree::new(5, 2);
        let bins = [[1, 10], [4, 1], [4, 10], [8, 8], [2, 2]];
        for (i, b) in bins.iter().enumerate() {
            t.set(i, b, 0);
        }
        let mut seen = Vec::new();
        assert!(t.first(&[3, 5], 0, &mut |i| {
            seen.push(i);
            true
        }));
        assert_eq!(seen, vec![2]);
        t.set(2, &[0, 0], 0);
        let mut all = Vec::new();
        assert!(!t.first(&[2, 2], 0, &mut |i| {
            all.push(i);
            false
        }));
        assert_eq!(all, vec![3, 4]);
        assert!(!t.first(&[1, 1], 1, &mut |_| true), "no ports anywhere");
    }
}
