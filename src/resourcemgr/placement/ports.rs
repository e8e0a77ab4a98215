//! Ports: assigning port numbers from an agent's offered port ranges, each number to one task
//! only (the free ranges shrink as ports are handed out, so numbers are distinct per agent).

use super::PortSpec;

/// The free port ranges of one agent (inclusive, sorted, disjoint).
#[derive(Debug, Clone, Default)]
pub(crate) struct FreePorts {
    ranges: Vec<(u64, u64)>,
    count: u64,
}

impl FreePorts {
    pub(crate) fn new(ranges: Vec<(u64, u64)>) -> Self {
        let count = ranges.iter().map(|(b, e)| e - b + 1).sum();
        Self { ranges, count }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    fn contains(&self, port: u64) -> bool {
        self.ranges.iter().any(|&(b, e)| b <= port && port <= e)
    }

    /// Whether `count` ports can be served, among them the numbers `fixed` (sorted): enough
    /// ports, and every fixed number free (and asked once).
    pub(crate) fn fits(&self, count: u64, fixed: &[u64]) -> bool {
        count <= self.count
            && fixed.windows(2).all(|w| w[0] != w[1])
            && fixed.iter().all(|p| self.contains(*p))
    }

    fn remove(&mut self, port: u64) {
        if let Some(i) = self
            .ranges
            .iter()
            .position(|&(b, e)| b <= port && port <= e)
        {
            let (b, e) = self.ranges[i];
            match (port == b, port == e) {
                (true, true) => {
                    self.ranges.remove(i);
                }
                (true, false) => self.ranges[i].0 = port + 1,
                (false, true) => self.ranges[i].1 = port - 1,
                (false, false) => {
                    self.ranges[i].1 = port - 1;
                    self.ranges.insert(i + 1, (port + 1, e));
                }
            }
            self.count -= 1;
        }
    }

    /// Assigns a number to each spec (its fixed number, else the lowest free one) and removes
    /// them; call only after [`FreePorts::fits`].
    pub(crate) fn assign(&mut self, specs: &[PortSpec]) -> Vec<u64> {
        for p in specs.iter().filter_map(|s| s.number) {
            self.remove(p);
        }
        specs
            .iter()
            .map(|s| match s.number {
                Some(p) => p,
                None => {
                    let p = self.ranges.first().map_or(0, |r| r.0);
                    self.remove(p);
                    p
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any() -> PortSpec {
        PortSpec::default()
    }

    fn fixed(n: u64) -> PortSpec {
        PortSpec {
            name: None,
            number: Some(n),
        }
    }

    /// `fits` as the placer calls it for these specs.
    fn fits(free: &FreePorts, specs: &[PortSpec]) -> bool {
        let mut fixed: Vec<u64> = specs.iter().filter_map(|s| s.number).collect();
        fixed.sort_unstable();
        free.fits(specs.len() as u64, &fixed)
    }

    #[test]
    fn assigns_distinct_ports() {
        let mut free = FreePorts::new(vec![(10, 12), (20, 20)]);
        assert!(fits(&free, &[any(), any(), fixed(11)]));
        assert!(!fits(&free, &[fixed(13)]));
        assert!(!fits(&free, &[fixed(10), fixed(10)]));
        assert_eq!(free.assign(&[any(), fixed(11), any()]), vec![10, 11, 12]);
        assert_eq!(free.count(), 1);
        assert!(!fits(&free, &[any(), any()]));
        assert_eq!(free.assign(&[any()]), vec![20]);
        assert_eq!(free.count(), 0);
    }
}
