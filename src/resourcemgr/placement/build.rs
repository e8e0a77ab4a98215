//! Turning placements into calls: the resources of each task cut from its bin's offers (so
//! they keep `allocation_info` and reservations), RESERVE / CREATE for new reservations, one
//! ACCEPT per bin with its operations in order, the offers to decline; and the ACCEPTs that
//! give obsolete reservations back.

use super::*;

impl Placer {
    /// Builds the answer of a round from the search's choices, and the offers it uses or
    /// declines (the caller takes them out of the pool). The placed requests are taken apart:
    /// their `TaskInfo`s, executors, ids and port names move into the answer (nothing of them
    /// is copied but the task ids kept in [`Placed`]); the others come back in
    /// [`Placement::pending`]. `apps` is each request's app number and the number of apps.
    /// A used bin's agent view is copied once, into the `Arc` its [`Placed`] entries and the
    /// ledger share (unused agents are not copied).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish(
        &mut self,
        mut requests: Vec<Request>,
        (req_app, apps): (&[u32], usize),
        compiled: &[Compiled],
        dims: &Dims,
        mut bins: Vec<Bin>,
        mut placed: Vec<Choice>,
        unplaced: Vec<Unplaced>,
        any_waiting: bool,
    ) -> (Placement, Vec<OfferId>) {
        let placed_count = placed.len();
        // The choices grouped by bin, each bin's in the order they were made (a counting
        // sort): bin `b`'s are `order[start[b]..start[b + 1]]`.
        let mut start = vec![0usize; bins.len() + 1];
        for (_, bi, ..) in &placed {
            start[bi + 1] += 1;
        }
        for b in 0..bins.len() {
            start[b + 1] += start[b];
        }
        let mut next = start.clone();
        let mut order = vec![0usize; placed_count];
        for (ci, (_, bi, ..)) in placed.iter().enumerate() {
            order[next[*bi]] = ci;
            next[*bi] += 1;
        }
        let used_bins = start.windows(2).filter(|w| w[0] < w[1]).count();
        let mut out = Placement {
            unplaced,
            accepts: Vec::with_capacity(used_bins),
            placed: Vec::with_capacity(placed_count),
            decline: Vec::new(),
            pending: Vec::new(),
        };
        let mut is_placed = vec![false; requests.len()];
        let principal = self.config.principal.clone();
        let mut gone: Vec<OfferId> = Vec::new();
        // Each app's name, shared by the ledger entries of its tasks (one copy per round).
        let mut app_names: Vec<Option<Arc<str>>> = vec![None; apps];
        self.ledger.reserve(placed_count);
        for (bi, bin) in bins.iter_mut().enumerate() {
            let items = &order[start[bi]..start[bi + 1]];
            if items.is_empty() {
                if !any_waiting {
                    out.decline.extend(bin.offer_ids.iter().cloned());
                }
                continue;
            }
            gone.extend(bin.offer_ids.iter().cloned());
            let view = Arc::new(bin.view.clone());
            self.ledger.note_agent(&view);
            let mut reserves: Vec<Operation> = Vec::new();
            let mut creates: Vec<Operation> = Vec::new();
            let mut launches: Vec<TaskInfo> = Vec::with_capacity(
                items
                    .iter()
                    .map(|ci| &requests[placed[*ci].0])
                    .filter(|r| !r.is_group())
                    .map(|r| r.tasks.len())
                    .sum(),
            );
            let mut groups: Vec<Operation> = Vec::new();
            let volumes = &bin.volumes;
            let shared = std::mem::take(&mut bin.shared);
            let mut carver = Carver {
                pieces: &mut bin.pieces,
            };
            for ci in items {
                let (ri, _, ref mut ports, disk_piece) = placed[*ci];
                let ports = std::mem::take(ports);
                is_placed[ri] = true;
                let c = &compiled[ri];
                let r = &mut requests[ri];
                let group = r.is_group();
                // The request is placed: its tasks and executor move into the ACCEPT.
                let mut specs = std::mem::take(&mut r.tasks);
                // (`take` of a `None` would still copy the whole large `Option`.)
                let executor_template = if r.executor.is_some() {
                    r.executor.take().map(|(e, _)| e)
                } else {
                    None
                };
                let mut reservation = None;
                let mut named = Vec::with_capacity(specs.len());
                let mut task_ids = Vec::with_capacity(specs.len());
                // Each task's agent and resources are written into its template where it lies;
                // the templates then move into the ACCEPT in one pass.
                for (ti, spec) in specs.iter_mut().enumerate() {
                    let task_ports: &[u64] = ports.get(ti).map_or(&[], Vec::as_slice);
                    let mut resources = match (&c.bound, &r.reservation) {
                        (Some(id), _) => {
                            reservation = Some((id.clone(), false));
                            let mut rs = carver.take(c.task(ti), &[], From::Reservation(id));
                            rs.extend(carver.take(&[], task_ports, From::Ordinary));
                            if let Some(v) = volumes.get(id) {
                                rs.push(v.clone());
                            }
                            rs
                        }
                        (None, Some(spec)) => {
                            reservation = Some((spec.id.clone(), true));
                            let taken = carver.take(c.task(ti), &[], From::Unreserved);
                            let info = dynamic_reservation(
                                &r.role,
                                principal.as_deref(),
                                &[(RESERVATION_LABEL, spec.id.as_str())],
                            );
                            let reserved: Vec<Resource> = taken
                                .iter()
                                .filter_map(|x| push_reservation(x, info.clone()).ok())
                                .collect();
                            let mut rs = reserved.clone();
                            let mut to_reserve = reserved;
                            if let Some(v) = &spec.volume {
                                let mut disk = vec![0; dims.len()];
                                disk[DISK] = to_fixed(v.size_mb);
                                let raw = carver.take(&disk, &[], From::Unreserved);
                                for piece in raw {
                                    if let Ok(reserved_disk) =
                                        push_reservation(&piece, info.clone())
                                    {
                                        let volume = persistent_volume(
                                            &reserved_disk,
                                            &spec.id,
                                            principal.as_deref(),
                                            &v.container_path,
                                        );
                                        to_reserve.push(reserved_disk);
                                        creates.push(operations::create(vec![volume.clone()]));
                                        rs.push(volume);
                                    }
                                }
                            }
                            reserves.push(operations::reserve(to_reserve));
                            rs.extend(carver.take(&[], task_ports, From::Ordinary));
                            rs
                        }
                        (None, None) => {
                            let from = if r.revocable {
                                From::Revocable
                            } else {
                                From::Ordinary
                            };
                            let mut rs = carver.take(c.task(ti), task_ports, from);
                            if let (Some(piece), Some((_, amount))) = (disk_piece, c.disk) {
                                rs.extend(carver.take_piece(piece, amount));
                            }
                            rs
                        }
                    };
                    resources.extend(
                        r.shared_volumes
                            .iter()
                            .filter_map(|id| shared.get(id).cloned()),
                    );
                    // Pieces of one kind from two offers of the agent add up into one entry.
                    if has_duplicate_kinds(&resources) {
                        resources = Resources::from_slice(&resources).into_vec();
                    }
                    named.push(
                        std::mem::take(&mut spec.demand.ports)
                            .into_iter()
                            .map(|s| s.name)
                            .zip(task_ports.iter().copied())
                            .collect(),
                    );
                    task_ids.push(spec.task.task_id.clone());
                    spec.task.agent_id = view.agent_id.clone();
                    spec.task.resources = resources;
                }
                let tasks = specs.into_iter().map(|s| s.task);
                let mut group_tasks = Vec::new();
                if group {
                    group_tasks.extend(tasks);
                } else {
                    launches.extend(tasks);
                }
                let executor = executor_template.map(|mut e| {
                    e.resources =
                        Resources::from_slice(&carver.take(&c.executor, &[], From::Ordinary))
                            .into_vec();
                    e
                });
                if group {
                    groups.push(operations::launch_group(
                        executor.unwrap_or_default(),
                        TaskGroupInfo { tasks: group_tasks },
                    ));
                }
                if let Some((id, true)) = &reservation {
                    self.ledger.reserved(id, &view.agent_id.value);
                }
                let app = match req_app.get(ri).and_then(|a| app_names.get_mut(*a as usize)) {
                    Some(slot) => Arc::clone(slot.get_or_insert_with(|| Arc::from(r.app_key()))),
                    None => Arc::from(r.app_key()),
                };
                self.ledger.record_running(r.id.clone(), &app, &view);
                out.placed.push(Placed {
                    request_id: std::mem::take(&mut r.id),
                    agent: Arc::clone(&view),
                    accept: out.accepts.len(),
                    task_ids,
                    ports: named,
                    reservation,
                });
            }
            // Operations are large structs: exact capacity, no growth.
            let mut ops = Vec::with_capacity(
                reserves.len() + creates.len() + usize::from(!launches.is_empty()) + groups.len(),
            );
            ops.extend(reserves);
            ops.extend(creates);
            if !launches.is_empty() {
                ops.push(operations::launch(launches));
            }
            ops.extend(groups);
            out.accepts.push(calls::accept(
                bin.offer_ids.clone(),
                ops,
                Some(self.config.refuse),
            ));
        }
        tracing::debug!(
            placed = out.placed.len(),
            unplaced = out.unplaced.len(),
            accepts = out.accepts.len(),
            declined = out.decline.len(),
            "placement round"
        );
        // The placed requests (emptied above) are dropped; the others stay, in order.
        let mut placed_flags = is_placed.into_iter();
        requests.retain(|_| !placed_flags.next().unwrap_or(false));
        out.pending = requests;
        // Each offer is in one bin, so the list holds no offer twice.
        gone.extend(out.decline.iter().cloned());
        (out, gone)
    }

    /// Gives back what is no longer wanted: for each offer carrying a reservation (or volume)
    /// of the placer whose id `obsolete` says is obsolete, one ACCEPT per agent and role with
    /// DESTROY of the volumes then UNRESERVE of everything reserved under that id. Those offers
    /// leave the pool; the ledger forgets the reservations.
    pub fn reclaim(&mut self, pool: &mut OfferPool, obsolete: impl Fn(&str) -> bool) -> Vec<Call> {
        let dims = Dims::new(std::iter::empty());
        let bins = bins::build(pool, &dims, RESERVATION_LABEL, &[]);
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for b in bins {
            let mut destroy = Vec::new();
            let mut unreserve = Vec::new();
            for p in &b.pieces {
                match &p.class {
                    bins::Class::Volume(id) if obsolete(id) => {
                        destroy.push(p.resource.clone());
                        unreserve.push(strip_volume(&p.resource));
                        self.ledger.forget_reservation(id);
                    }
                    bins::Class::Labelled(id) if obsolete(id) => {
                        unreserve.push(p.resource.clone());
                        self.ledger.forget_reservation(id);
                    }
                    _ => {}
                }
            }
            if unreserve.is_empty() {
                continue;
            }
            let mut ops = Vec::new();
            if !destroy.is_empty() {
                ops.push(operations::destroy(destroy));
            }
            ops.push(operations::unreserve(unreserve));
            out.push(calls::accept(
                b.offer_ids.clone(),
                ops,
                Some(self.config.refuse),
            ));
            gone.extend(b.offer_ids);
        }
        if let Err(e) = pool.take(&gone) {
            tracing::warn!(error = %e, "offer pool changed during reclaim");
        }
        out
    }
}

/// Whether two entries share a name (and so may need adding up).
fn has_duplicate_kinds(resources: &[Resource]) -> bool {
    resources
        .iter()
        .enumerate()
        .any(|(i, r)| resources[..i].iter().any(|x| x.name == r.name))
}
