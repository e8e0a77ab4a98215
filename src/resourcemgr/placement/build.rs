//! Turning placements into calls: the resources of each task cut from its bin's offers (so
//! they keep `allocation_info` and reservations), RESERVE / CREATE for new reservations, one
//! ACCEPT per bin with its operations in order, the offers to decline; and the ACCEPTs that
//! give obsolete reservations back.

use super::*;

impl Placer {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish(
        &mut self,
        pool: &mut OfferPool,
        mut requests: Vec<Request>,
        compiled: &[Compiled],
        dims: &Dims,
        mut bins: Vec<Bin>,
        placed: Vec<Choice>,
        unplaced: Vec<Unplaced>,
        any_waiting: bool,
    ) -> Placement {
        // Per bin: (request index, ports per task, disk piece).
        type Item = (usize, Vec<Vec<u64>>, Option<usize>);
        let mut per_bin: Vec<Vec<Item>> = vec![Vec::new(); bins.len()];
        for (ri, bi, ports, disk) in placed {
            per_bin[bi].push((ri, ports, disk));
        }
        let used_bins = per_bin.iter().filter(|items| !items.is_empty()).count();
        let mut out = Placement {
            unplaced,
            accepts: Vec::with_capacity(used_bins),
            placed: Vec::with_capacity(requests.len()),
            decline: Vec::new(),
            pending: Vec::new(),
        };
        let mut is_placed = vec![false; requests.len()];
        let principal = self.config.principal.clone();
        let mut gone: Vec<OfferId> = Vec::new();
        for (bi, items) in per_bin.into_iter().enumerate() {
            let bin = &mut bins[bi];
            if items.is_empty() {
                if !any_waiting {
                    out.decline.extend(bin.offer_ids.iter().cloned());
                }
                continue;
            }
            gone.extend(bin.offer_ids.iter().cloned());
            let mut reserves: Vec<Operation> = Vec::new();
            let mut creates: Vec<Operation> = Vec::new();
            let mut launches: Vec<TaskInfo> = Vec::with_capacity(items.len());
            let mut groups: Vec<Operation> = Vec::new();
            let volumes = bin.volumes.clone();
            let shared = std::mem::take(&mut bin.shared);
            let mut carver = Carver {
                pieces: &mut bin.pieces,
                dims,
            };
            for (ri, ports, disk_piece) in items {
                is_placed[ri] = true;
                let r = &requests[ri];
                let c = &compiled[ri];
                let mut task_resources: Vec<Vec<Resource>> = Vec::with_capacity(r.tasks.len());
                let mut reservation = None;
                for ti in 0..r.tasks.len() {
                    let task_ports = ports.get(ti).cloned().unwrap_or_default();
                    let mut resources = match (&c.bound, &r.reservation) {
                        (Some(id), _) => {
                            reservation = Some((id.clone(), false));
                            let mut rs = carver.take(&c.per_task[ti], &[], From::Reservation(id));
                            rs.extend(carver.take(&[], &task_ports, From::Ordinary));
                            if let Some(v) = volumes.get(id) {
                                rs.push(v.clone());
                            }
                            rs
                        }
                        (None, Some(spec)) => {
                            reservation = Some((spec.id.clone(), true));
                            let taken = carver.take(&c.per_task[ti], &[], From::Unreserved);
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
                            rs.extend(carver.take(&[], &task_ports, From::Ordinary));
                            rs
                        }
                        (None, None) => {
                            let from = if r.revocable {
                                From::Revocable
                            } else {
                                From::Ordinary
                            };
                            let mut rs = carver.take(&c.per_task[ti], &task_ports, from);
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
                    task_resources.push(resources);
                }
                // The templates move into the ACCEPT (each copied once, into its place there);
                // `r.tasks` keeps the demands.
                let r = &mut requests[ri];
                let group = r.is_group();
                let mut group_tasks = Vec::new();
                let dest = if group {
                    &mut group_tasks
                } else {
                    &mut launches
                };
                let first = dest.len();
                for (spec, resources) in r.tasks.iter_mut().zip(task_resources) {
                    dest.push(std::mem::take(&mut spec.task));
                    if let Some(task) = dest.last_mut() {
                        task.agent_id = bin.view.agent_id.clone();
                        task.resources = resources;
                    }
                }
                let task_ids = dest[first..].iter().map(|t| t.task_id.clone()).collect();
                let executor_template = r.executor.as_mut().map(|(e, _)| std::mem::take(e));
                let r = &*r;
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
                    self.ledger.reserved(id, &bin.view.agent_id.value);
                }
                self.ledger.record_shared(&r.id, r.app_key(), &bin.view);
                let named = r
                    .tasks
                    .iter()
                    .zip(&ports)
                    .map(|(t, ps)| {
                        t.demand
                            .ports
                            .iter()
                            .map(|s| s.name.clone())
                            .zip(ps.iter().copied())
                            .collect()
                    })
                    .collect();
                out.placed.push(Placed {
                    request_id: r.id.clone(),
                    agent: Arc::clone(&bin.view),
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
        out.pending = requests
            .into_iter()
            .zip(is_placed)
            .filter_map(|(r, placed)| (!placed).then_some(r))
            .collect();
        gone.extend(out.decline.iter().cloned());
        gone.sort_by(|a, b| a.value.cmp(&b.value));
        gone.dedup();
        if let Err(e) = pool.take(&gone) {
            tracing::warn!(error = %e, "offer pool changed during placement");
        }
        out
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
