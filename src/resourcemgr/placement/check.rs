//! A request compiled for the search (fixed-point demand, constraint and preference fields),
//! and the checks of one request against one bin: what the search asks and what explains a
//! request left unplaced.

use super::*;

/// Compiled request: fixed-point demand and the indexes it needs.
pub(super) struct Compiled {
    pub(super) total: Amounts,
    /// Each task's demand, one after the other ([`Compiled::task`] cuts them out).
    pub(super) per_task: Amounts,
    pub(super) executor: Amounts,
    /// How many ports its tasks ask for, and the fixed numbers among them (sorted).
    pub(super) port_count: u64,
    pub(super) fixed_ports: Vec<u64>,
    pub(super) reserve_total: Amounts,
    pub(super) share: f64,
    pub(super) dominant: usize,
    pub(super) constraints: Vec<(usize, usize)>,
    pub(super) preferences: Vec<(usize, String)>,
    pub(super) sticky_agent: Option<String>,
    pub(super) bound: Option<String>,
    pub(super) invalid: Option<String>,
    /// May use revocable resources.
    pub(super) revocable: bool,
    /// A PATH (false) or MOUNT (true) disk of this amount, outside `total`.
    pub(super) disk: Option<(bool, i64)>,
    /// Needs checks the search structures cannot see (revocable, PATH/MOUNT disk, shared
    /// volumes): searched by a scan of the bins.
    pub(super) special: bool,
}

impl Compiled {
    /// Task `ti`'s demand.
    pub(super) fn task(&self, ti: usize) -> &[i64] {
        let n = self.total.len();
        self.per_task.get(ti * n..(ti + 1) * n).unwrap_or(&[])
    }

    /// How much of dimension `d` of `b` this request may use beyond `have`: the revocable
    /// amount, for a request that opts in.
    fn extra(&self, b: &Bin, d: usize) -> i64 {
        if self.revocable { b.revocable[d] } else { 0 }
    }
}

/// The checks of one request against one bin.
pub(super) struct Ctx<'a> {
    pub(super) req: &'a Request,
    pub(super) c: &'a Compiled,
    pub(super) counts: &'a FastMap<(u32, usize), Counts>,
    pub(super) seen: &'a [usize],
    pub(super) app: u32,
    pub(super) gpu_rule: bool,
    pub(super) dims: &'a Dims,
}

impl Ctx<'_> {
    /// Whether `b` can take the request. Searching (`fail` is `None`) stops at the first
    /// failed check; explaining reports every failure to `fail`.
    pub(super) fn check(&self, b: &Bin, mut fail: Option<&mut dyn FnMut(FailureKind)>) -> bool {
        let searching = fail.is_none();
        let mut report = |k: FailureKind| {
            if let Some(f) = fail.as_mut() {
                f(k);
                true
            } else {
                false
            }
        };
        let c = self.c;
        if searching && c.bound.is_none() {
            // Searching: the cheapest and most selective check first.
            let (have, want) = if self.req.reservation.is_some() {
                (&b.unreserved, &c.reserve_total)
            } else {
                (&b.free, &c.total)
            };
            if want
                .iter()
                .zip(have)
                .enumerate()
                .any(|(d, (w, h))| *w > h + c.extra(b, d))
            {
                return false;
            }
        }
        if let Some(role) = &b.role {
            if *role != self.req.role {
                report(FailureKind::Role);
                return false;
            }
        }
        let mut ok = true;
        if let Some(id) = &c.bound {
            if !b.reservations.contains_key(id) {
                report(FailureKind::Reservation);
                return false;
            }
        }
        if self.gpu_rule && b.gpu && c.total[GPU] == 0 {
            if !report(FailureKind::GpuAgent) {
                return false;
            }
            ok = false;
        }
        for (f, ci) in &c.constraints {
            let constraint = &self.req.constraints[*ci];
            let counts = self.counts.get(&(self.app, *f));
            if !constraint.allows(b.values[*f].as_deref(), counts, self.seen[*f]) {
                if !report(FailureKind::Constraint(constraint.to_string())) {
                    return false;
                }
                ok = false;
            }
        }
        let have: &[i64] = match &c.bound {
            Some(id) => b.reservations.get(id).map_or(&b.free, Vec::as_slice),
            None if self.req.reservation.is_some() => &b.unreserved,
            None => &b.free,
        };
        let want = if c.bound.is_none() && self.req.reservation.is_some() {
            &c.reserve_total
        } else {
            &c.total
        };
        for (d, w) in want.iter().enumerate() {
            if *w > have[d] + c.extra(b, d) {
                if !report(FailureKind::Short(self.dims.names[d].clone())) {
                    return false;
                }
                ok = false;
            }
        }
        if c.port_count > 0 && !b.ports.fits(c.port_count, &c.fixed_ports) {
            if !report(FailureKind::Ports) {
                return false;
            }
            ok = false;
        }
        if let Some((mount, amount)) = c.disk {
            if b.disk_for(mount, amount).is_none() {
                let what = if mount { "MOUNT disk" } else { "PATH disk" };
                if !report(FailureKind::Short(what.into())) {
                    return false;
                }
                ok = false;
            }
        }
        for id in &self.req.shared_volumes {
            if !b.shared.contains_key(id) {
                if !report(FailureKind::SharedVolume(id.clone())) {
                    return false;
                }
                ok = false;
            }
        }
        ok
    }

    pub(super) fn preferred(&self, b: &Bin) -> bool {
        if let Some(a) = &self.c.sticky_agent {
            if *a == b.view.agent_id.value {
                return true;
            }
        }
        self.c
            .preferences
            .iter()
            .any(|(f, v)| b.values[*f].as_deref() == Some(v.as_str()))
    }

    pub(super) fn preference_text(&self) -> String {
        let mut parts: Vec<String> = self
            .req
            .preferences
            .iter()
            .map(|p| format!("{}:{}", p.field, p.value))
            .collect();
        if let Some(a) = &self.c.sticky_agent {
            parts.push(format!("last agent {a}"));
        }
        parts.join(", ")
    }
}
